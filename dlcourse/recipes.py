"""The MNIST models and training recipes of chapter 7, in NumPy (dlcourse) and in PyTorch, written once.

Library code: chapter 7's notebook and ``benchmarks/mnist.py`` both use this module (benchmarks import the
library only), so the numbers in the README come from the same code the learner reads.

* Preprocessing and augmentation are :mod:`dlcourse.data.transforms`' (:func:`preprocess`, :func:`random_shift`).
* :func:`mlp` / :func:`torch_mlp` and :func:`cnn` / :func:`torch_cnn`: twin architectures whose
  ``state_dict`` keys and shapes are identical, so weights move between the libraries (MNIST's sizes for
  :func:`dlcourse.models.mlp` and :func:`dlcourse.models.cnn`, which build both libraries' layers).
* :data:`RECIPES` and :func:`train_recipe`: the chapter's full training settings (model,
  optimizer, schedule, augmentation, epochs), run by either library on any device.
"""

from __future__ import annotations

import math
import platform
import time
from dataclasses import asdict, dataclass, field, replace

import numpy as np

from . import models, optim
from .data.transforms import preprocess, random_shift
from .metrics import evaluate, evaluate_torch
from .random import manual_seed
from .runtime import cpu_model
from .train import EarlyStopping, fit, fit_torch

NUM_CLASSES = 10


# ---------------------------------------------------------------------------------------
# Models: NumPy and PyTorch twins (same layer order, so the same state_dict keys)
# ---------------------------------------------------------------------------------------


def mlp(hidden_sizes=(128,), dropout: float = 0.0, in_features: int = 784, num_classes: int = NUM_CLASSES,
        input_grad: bool = True):
    """Linear -> ReLU [-> Dropout] for each hidden size, then Linear to the class logits.

    ``mlp((128,))`` is the classic 784-128-10 network; input (N, 784), output logits (N, 10).
    Built by :func:`dlcourse.models.mlp` (a Sequential); ``input_grad=False`` sets its
    ``needs_input_grad`` to False, so backward skips dL/dx (the input is data), as PyTorch does.
    """
    model = models.mlp(in_features, hidden_sizes, num_classes, dropout=dropout)
    model.needs_input_grad = input_grad
    return model


def torch_mlp(hidden_sizes=(128,), dropout: float = 0.0, in_features: int = 784, num_classes: int = NUM_CLASSES):
    """The PyTorch twin of :func:`mlp` (same layers, same ``state_dict`` keys)."""
    return models.mlp(in_features, hidden_sizes, num_classes, dropout=dropout, library="torch")


def cnn(channels=(32, 64), hidden_size: int = 128, dropout: float = 0.5, num_classes: int = NUM_CLASSES):
    """Two 3x3 convolutions (padding 1) with ReLU and 2x2 max pooling, a dense layer, dropout, logits.

    (N, 1, 28, 28) -> conv 32 -> pool -> (N, 32, 14, 14) -> conv 64 -> pool -> (N, 64, 7, 7)
    -> flatten (N, 3136) -> dense 128 -> dropout -> (N, 10) logits. Built by :func:`dlcourse.models.cnn`.
    """
    return models.cnn(channels, hidden_size, dropout, num_classes)


def torch_cnn(channels=(32, 64), hidden_size: int = 128, dropout: float = 0.5, num_classes: int = NUM_CLASSES):
    """The PyTorch twin of :func:`cnn`."""
    return models.cnn(channels, hidden_size, dropout, num_classes, library="torch")


# ---------------------------------------------------------------------------------------
# Recipes: everything that defines a training run
# ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Recipe:
    """A full training setting. ``schedule``: 'constant', 'cosine' (to 0 over the run, per batch)
    or 'onecycle' (PyTorch's OneCycleLR with max_lr=lr). ``max_shift``: augmentation (0 = none)."""

    model: str  # "mlp" or "cnn"
    model_args: dict = field(default_factory=dict)
    optimizer: str = "adam"  # "adam", "adamw" or "sgd"
    lr: float = 1e-3
    weight_decay: float = 0.0
    momentum: float = 0.9  # SGD only
    batch_size: int = 128
    num_epochs: int = 10
    schedule: str = "constant"
    max_shift: int = 0
    patience: int | None = None  # early stopping on the validation accuracy (needs validation data)

    def describe(self) -> str:
        if self.model == "mlp":
            arch = "MLP 784-" + "-".join(str(h) for h in self.model_args.get("hidden_sizes", (128,))) + "-10"
        else:
            c1, c2 = self.model_args.get("channels", (32, 64))
            arch = f"CNN conv{c1}-conv{c2}-{self.model_args.get('hidden_size', 128)}-10"
        drop = self.model_args.get("dropout", 0.5 if self.model == "cnn" else 0.0)
        parts = [arch, f"{self.optimizer} lr {self.lr:g}", f"{self.schedule} schedule", f"batch {self.batch_size}",
                 f"{self.num_epochs} epoch{'s' if self.num_epochs != 1 else ''}"]
        if self.weight_decay:
            parts.append(f"weight decay {self.weight_decay:g}")
        if drop:
            parts.append(f"dropout {drop:g}")
        if self.max_shift:
            parts.append(f"shifts of up to {self.max_shift} px")
        return ", ".join(parts)


RECIPES = {
    # The classic network, trained plainly: what most tutorials show.
    "mlp128": Recipe("mlp", {"hidden_sizes": (128,)}, num_epochs=5),
    # The benchmark MLP: 784-256-10, Adam at 1e-3 decayed to 0 by a cosine schedule, batch 128.
    "mlp": Recipe("mlp", {"hidden_sizes": (256,)}, schedule="cosine"),
    # The benchmark CNN: two conv layers, dropout, light augmentation, one-cycle schedule.
    "cnn": Recipe("cnn", {"channels": (32, 64), "hidden_size": 128, "dropout": 0.5}, optimizer="adamw",
                  lr=2e-3, weight_decay=1e-2, schedule="onecycle", max_shift=2),
}


def build_model(recipe: Recipe, library: str = "numpy"):
    if recipe.model not in ("mlp", "cnn"):
        raise ValueError(f"build_model: expected model 'mlp' or 'cnn', got {recipe.model!r}")
    if library == "numpy":
        if recipe.model == "mlp":  # training data need no gradient: skip it, as PyTorch does
            return mlp(**recipe.model_args, input_grad=False)
        model = cnn(**recipe.model_args)
        model.needs_input_grad = False  # the same for the CNN: its first convolution skips dL/dx
        return model
    if library == "torch":
        return (torch_mlp if recipe.model == "mlp" else torch_cnn)(**recipe.model_args)
    raise ValueError(f"build_model: expected library 'numpy' or 'torch', got {library!r}")


RECIPE_OPTIMIZERS = ("adam", "adamw", "sgd")  # names in the optimizer registry, dlcourse.optim.OPTIMIZERS


def build_optimizer(recipe: Recipe, params, library: str, steps_per_epoch: int):
    """(optimizer, per-batch scheduler or None) for ``library`` ('numpy' -> dlcourse.optim, 'torch')."""
    if recipe.optimizer not in RECIPE_OPTIMIZERS:
        raise ValueError(f"build_optimizer: expected optimizer in {sorted(RECIPE_OPTIMIZERS)}, "
                         f"got {recipe.optimizer!r}")
    kwargs = {"lr": recipe.lr, "weight_decay": recipe.weight_decay}
    if recipe.optimizer == "sgd":
        kwargs["momentum"] = recipe.momentum
    opt = optim.make_optimizer(recipe.optimizer, params, library=library, **kwargs)
    if library == "torch":
        import torch.optim as optim_lib
    else:
        optim_lib = optim
    total = recipe.num_epochs * steps_per_epoch
    if recipe.schedule == "constant":
        return opt, None
    if recipe.schedule == "cosine":
        return opt, optim_lib.lr_scheduler.CosineAnnealingLR(opt, T_max=total)
    if recipe.schedule == "onecycle":
        return opt, optim_lib.lr_scheduler.OneCycleLR(opt, max_lr=recipe.lr, total_steps=total)
    raise ValueError(f"build_optimizer: expected schedule 'constant', 'cosine' or 'onecycle', got {recipe.schedule!r}")


def prepare(recipe: Recipe, images) -> np.ndarray:
    """The model's input for uint8 ``images``: flat for the MLP, (N, 1, 28, 28) for the CNN."""
    return preprocess(images, flatten=recipe.model == "mlp")


@dataclass
class Run:
    """The outcome of :func:`train_recipe`."""

    recipe: Recipe
    library: str
    device: str
    model: object
    history: object
    test_loss: float = math.nan
    test_acc: float = math.nan

    @property
    def seconds_per_epoch(self) -> float:
        return self.history.seconds_per_epoch

    def summary(self) -> dict:
        return {"recipe": self.recipe.describe(), "library": self.library, "device": self.device,
                "epochs": self.history.epochs, "test_acc": self.test_acc, "test_loss": self.test_loss,
                "seconds_per_epoch": self.seconds_per_epoch, "seconds": [round(s, 3) for s in self.history.seconds],
                "val_acc": self.history.val_acc, "train_loss": self.history.train_loss}


def train_recipe(recipe: Recipe, train, test=None, *, library: str = "numpy", device: str = "cpu", val=None,
                 seed: int = 0, progress: bool = True, **overrides) -> Run:
    """Train ``recipe`` with ``library`` on ``train = (images, labels)`` (uint8 images, as loaded).

    ``val``: (images, labels) for validation curves / early stopping; ``test``: evaluated once,
    at the end, in eval mode. ``overrides`` replace recipe fields (e.g. ``num_epochs=2``).
    Seeds: ``dlcourse.manual_seed(seed)`` / ``torch.manual_seed(seed)`` before building the model.
    """
    recipe = replace(recipe, **overrides) if overrides else recipe
    x_train, y_train = prepare(recipe, train[0]), np.asarray(train[1])
    val_data = (prepare(recipe, val[0]), np.asarray(val[1])) if val is not None else None
    steps_per_epoch = math.ceil(len(x_train) / recipe.batch_size)
    early = EarlyStopping(recipe.patience) if recipe.patience else None
    augment = (lambda xb, rng: random_shift(xb, rng, recipe.max_shift)) if recipe.max_shift else None
    common = dict(num_epochs=recipe.num_epochs, batch_size=recipe.batch_size, val_data=val_data, augment=augment,
                  early_stopping=early, seed=seed, progress=progress,
                  desc=f"{'NumPy' if library == 'numpy' else 'PyTorch ' + device} {recipe.model.upper()}")
    if library == "numpy":
        manual_seed(seed)
        model = build_model(recipe, "numpy")
        opt, sched = build_optimizer(recipe, model.parameters(), "numpy", steps_per_epoch)
        history = fit(model, opt, x_train, y_train, scheduler=sched, **common)
        run = Run(recipe, library, "cpu", model, history)
        if test is not None:
            run.test_loss, run.test_acc = evaluate(model, prepare(recipe, test[0]), np.asarray(test[1]))
    elif library == "torch":
        import torch
        torch.manual_seed(seed)
        model = build_model(recipe, "torch").to(device)
        opt, sched = build_optimizer(recipe, model.parameters(), "torch", steps_per_epoch)
        history = fit_torch(model, opt, x_train, y_train, scheduler=sched, device=device, **common)
        run = Run(recipe, library, device, model, history)
        if test is not None:
            run.test_loss, run.test_acc = evaluate_torch(model, prepare(recipe, test[0]), np.asarray(test[1]),
                                                         device=device)
    else:
        raise ValueError(f"train_recipe: expected library 'numpy' or 'torch', got {library!r}")
    return run


def environment(threads: int | None = None) -> dict:
    """Where a run happened: CPU model, thread count, library versions (for result tables)."""
    import numpy
    info = {"cpu": cpu_model(), "python": platform.python_version(), "numpy": numpy.__version__,
            "platform": platform.platform(), "threads": threads,
            "date": time.strftime("%Y-%m-%d %H:%M:%S %Z")}
    try:
        import torch
        info["torch"] = torch.__version__
        info["cuda"] = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    except ImportError:  # pragma: no cover - torch is optional for the package
        info["torch"] = None
    return info


def recipe_dict(recipe: Recipe) -> dict:
    d = asdict(recipe)
    d["description"] = recipe.describe()
    return d
