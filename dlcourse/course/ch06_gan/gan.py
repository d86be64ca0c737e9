"""Generative adversarial networks in NumPy, built from ``dlcourse.nn`` (chapter 6).

Two players. The generator G maps noise z ~ N(0, I) to a sample G(z); the discriminator D
maps a sample x to a logit l, and D(x) = sigmoid(l) is its probability that x is real.
Both losses are binary cross-entropy on D's logits (``BCEWithLogitsLoss``, which computes
-[y log sigmoid(l) + (1 - y) log(1 - sigmoid(l))] stably):

    discriminator:   L_D = BCE(D(x), 1) + BCE(D(G(z)), 0)
                         = -[ mean log D(x) + mean log(1 - D(G(z))) ]      (= -V(D, G) on the batch)
    generator, non-saturating (used in practice):
                     L_G = BCE(D(G(z)), 1) = -mean log D(G(z))
    generator, saturating (the minimax game as written):
                     L_G = -BCE(D(G(z)), 0) = mean log(1 - D(G(z)))

D descends L_D, i.e. *ascends* the value V; G descends its own loss. With respect to D's
logit l, the saturating loss has gradient -D(G(z))/n, which vanishes when D confidently
rejects the fakes (early in training), while the non-saturating one has (D(G(z)) - 1)/n,
close to -1/n there. That is why G uses the non-saturating loss.

One training step (:func:`gan_step`) is ``k`` discriminator steps, then one generator step,
each with its own optimizer (any object with ``.zero_grad()`` and ``.step()``, such as
``dlcourse.optim.Adam``). Shapes: real batches (N, data_dim), noise z (M, latent_dim), G(z)
(M, data_dim), D's logits (N, 1); N and M may differ.

* :func:`discriminator_step` - ``opt_D.zero_grad()``; the fake batch G(z) is computed but G is
  not back-propagated (PyTorch's ``G(z).detach()``); D's real half and fake half are two
  separate forward/backward passes whose parameter gradients add up; ``opt_D.step()``.
* :func:`generator_step` - ``opt_G.zero_grad()``; the loss back-propagates through D into G,
  with D's parameters frozen (:func:`frozen`, PyTorch's ``D.requires_grad_(False)``) so the
  generator's loss never writes into D's ``.grad``; ``opt_G.step()``.

Forward passes cache what their backward needs, so each backward follows its own forward.
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import dataclass, field

import numpy as np

from dlcourse import random as package_random
from dlcourse import runtime
from dlcourse.i18n import _
from dlcourse.models import mlp
from dlcourse.nn.activation import LeakyReLU, ReLU, Sigmoid, Tanh
from dlcourse.nn.functional import sigmoid
from dlcourse.nn.linear import Linear
from dlcourse.nn.loss import BCEWithLogitsLoss
from dlcourse.nn.module import Module, Sequential
from dlcourse.train.divergence import Diverged, DivergenceGuard

GENERATOR_LOSSES = ("non_saturating", "saturating")


# ---------------------------------------------------------------------------------------
# The two players: small MLPs
# ---------------------------------------------------------------------------------------


@contextlib.contextmanager
def _seeded(seed):
    """With a seed, draw initial weights from a fresh generator, leaving the package's own untouched."""
    if seed is None:
        yield
        return
    old = package_random._rng
    package_random.manual_seed(seed)
    try:
        yield
    finally:
        package_random._rng = old


def make_generator(latent_dim: int = 2, hidden_size: int = 128, out_features: int = 2,
                   num_hidden_layers: int = 2, dtype=np.float32, seed: int | None = None) -> Sequential:
    """G: z (N, latent_dim) -> x (N, out_features). Linear + ReLU hidden layers, a linear output.

    Weights are drawn from the package's generator (``dlcourse.manual_seed``), or from
    ``seed`` alone when it is given (without disturbing the package's generator).
    """
    if num_hidden_layers < 1:
        raise ValueError(f"make_generator: expected num_hidden_layers >= 1, got {num_hidden_layers}")
    with _seeded(seed):
        return mlp(latent_dim, (hidden_size,) * num_hidden_layers, out_features, dtype=dtype)


def make_discriminator(in_features: int = 2, hidden_size: int = 128, num_hidden_layers: int = 2,
                       negative_slope: float = 0.2, dtype=np.float32, seed: int | None = None) -> Sequential:
    """D: x (N, in_features) -> logit (N, 1). Linear + LeakyReLU hidden layers; D(x) = sigmoid(logit)."""
    if num_hidden_layers < 1:
        raise ValueError(f"make_discriminator: expected num_hidden_layers >= 1, got {num_hidden_layers}")
    with _seeded(seed):
        return mlp(in_features, (hidden_size,) * num_hidden_layers, 1, activation="leaky_relu",
                   negative_slope=negative_slope, dtype=dtype)


def to_torch(model: Sequential):
    """A ``torch.nn.Sequential`` twin of a dlcourse Sequential MLP, with a copy of its weights and dtype."""
    import torch

    layers = []
    for m in model:
        if isinstance(m, Linear):
            layers.append(torch.nn.Linear(m.in_features, m.out_features, bias=m.bias is not None))
        elif isinstance(m, LeakyReLU):
            layers.append(torch.nn.LeakyReLU(m.negative_slope))
        elif isinstance(m, (ReLU, Tanh, Sigmoid)):
            layers.append(getattr(torch.nn, type(m).__name__)())
        else:
            raise ValueError(f"to_torch: expected Linear/ReLU/LeakyReLU/Tanh/Sigmoid layers, got {type(m).__name__}")
    state = model.state_dict()
    dtype = torch.float64 if next(iter(state.values())).dtype == np.float64 else torch.float32
    net = torch.nn.Sequential(*layers).to(dtype)  # the dtype first: loading float64 into float32 would round
    net.load_state_dict({k: torch.as_tensor(np.array(v)) for k, v in state.items()})
    return net


@contextlib.contextmanager
def frozen(module: Module):
    """Inside the block, ``module``'s backward still returns the input gradient but leaves its ``.grad`` alone."""
    params = list(module.parameters())
    flags = [p.requires_grad for p in params]
    for p in params:
        p.requires_grad = False
    try:
        yield module
    finally:
        for p, flag in zip(params, flags):
            p.requires_grad = flag


def flat_grad(module: Module) -> np.ndarray:
    """Every parameter's ``.grad`` of ``module``, flattened and concatenated in ``parameters()`` order (a copy)."""
    missing = [name for name, p in module.named_parameters() if p.grad is None]
    if missing:
        raise ValueError(f"flat_grad: expected every parameter to hold a .grad (has backward run since the last "
                         f"zero_grad()?), got none in {', '.join(missing)}")
    return np.concatenate([p.grad.ravel() for p in module.parameters()])


# ---------------------------------------------------------------------------------------
# One training step
# ---------------------------------------------------------------------------------------


def _check_batch(x, name, width):
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] != width:
        raise ValueError(f"{name}: expected a non-empty batch of shape (N, {width}), got {x.shape}")
    return x


def _first_linear(model: Module) -> Linear:
    """The first Linear layer of a model (the model itself if it is one): its input width and dtype."""
    for m in model.modules():
        if isinstance(m, Linear):
            return m
    raise ValueError(f"expected a model that starts with a Linear layer, got {type(model).__name__}")


def _width(model: Module) -> int:
    return _first_linear(model).in_features


def discriminator_step(G: Module, D: Module, real, z, opt_D) -> dict:
    """One update of D on a real batch and the fakes G(z); returns L_D, mean D(x) and mean D(G(z)).

    L_D = BCE(D(real), 1) + BCE(D(G(z)), 0), each a mean over its own half. G is not updated
    and gets no gradient (the fakes are constants here, like ``G(z).detach()``).
    """
    real = _check_batch(real, "discriminator_step: real", _width(D))
    z = _check_batch(z, "discriminator_step: z", _width(G))
    criterion = BCEWithLogitsLoss()
    opt_D.zero_grad()
    fake = G.forward(z)                                   # no G.backward: the fakes are detached
    logits_real = D.forward(real)
    loss_real = criterion.forward(logits_real, np.ones_like(logits_real))
    D.backward(criterion.backward())                      # adds dL_real/dtheta_D into D's .grad
    logits_fake = D.forward(fake)
    loss_fake = criterion.forward(logits_fake, np.zeros_like(logits_fake))
    D.backward(criterion.backward())                      # ... and dL_fake/dtheta_D on top
    opt_D.step()
    return {"loss_D": loss_real + loss_fake,
            "D_real": float(sigmoid(logits_real).mean()), "D_fake": float(sigmoid(logits_fake).mean())}


def generator_step(G: Module, D: Module, z, opt_G, generator_loss: str = "non_saturating") -> dict:
    """One update of G through a frozen D; returns L_G and mean D(G(z)) (before the update).

    ``generator_loss='non_saturating'``: L_G = -mean log D(G(z)) = BCE(D(G(z)), 1);
    ``'saturating'``: L_G = mean log(1 - D(G(z))) = -BCE(D(G(z)), 0).
    """
    if generator_loss not in GENERATOR_LOSSES:
        raise ValueError(f"generator_step: generator_loss must be one of {GENERATOR_LOSSES}, got {generator_loss!r}")
    z = _check_batch(z, "generator_step: z", _width(G))
    criterion = BCEWithLogitsLoss()
    opt_G.zero_grad()
    fake = G.forward(z)
    logits = D.forward(fake)
    if generator_loss == "non_saturating":
        loss_G = criterion.forward(logits, np.ones_like(logits))
        grad_logits = criterion.backward()
    else:
        loss_G = -criterion.forward(logits, np.zeros_like(logits))
        grad_logits = -criterion.backward()
    with frozen(D):                                       # the gradient flows through D, not into it
        grad_fake = D.backward(grad_logits)
    G.backward(grad_fake)
    opt_G.step()
    return {"loss_G": loss_G, "D_fake_G": float(sigmoid(logits).mean())}


def gan_step(G: Module, D: Module, opt_G, opt_D, real_batches, z_D, z_G,
             generator_loss: str = "non_saturating") -> dict:
    """k = len(real_batches) discriminator steps (real_batches[i] against G(z_D[i])), then one generator step.

    Returns ``loss_D`` (the list of the k discriminator losses), ``loss_G``, and D's mean
    outputs ``D_real``, ``D_fake`` (last discriminator step) and ``D_fake_G`` (generator step).
    """
    if len(real_batches) != len(z_D) or len(real_batches) == 0:
        raise ValueError(f"gan_step: expected as many noise batches as real batches (k >= 1), "
                         f"got {len(real_batches)} real and {len(z_D)} noise batches")
    d_stats = [discriminator_step(G, D, real, z, opt_D) for real, z in zip(real_batches, z_D)]
    g_stats = generator_step(G, D, z_G, opt_G, generator_loss)
    return {"loss_D": [s["loss_D"] for s in d_stats], "D_real": d_stats[-1]["D_real"],
            "D_fake": d_stats[-1]["D_fake"], **g_stats}


# ---------------------------------------------------------------------------------------
# Training loop, snapshots and the mode-coverage measure
# ---------------------------------------------------------------------------------------


@dataclass
class Snapshot:
    step: int
    samples: np.ndarray          # (n, 2) G(z) for a fixed z
    surface: np.ndarray | None   # D(x) on the history's grid, (steps, steps)


@dataclass
class GANHistory:
    loss_D: list = field(default_factory=list)    # mean of the k discriminator losses, per step
    loss_G: list = field(default_factory=list)
    D_real: list = field(default_factory=list)
    D_fake: list = field(default_factory=list)
    snapshots: list = field(default_factory=list)
    grid: tuple | None = None                     # (xx, yy) of the discriminator surfaces
    seconds: float = 0.0
    diverged_at: int | None = None                # the step whose losses diverged (on_divergence='stop')


def sample_generator(G: Module, n: int, seed: int = 0) -> np.ndarray:
    """n samples G(z), z ~ N(0, I) drawn from ``seed`` (in G's dtype)."""
    first = _first_linear(G)
    z = np.random.default_rng(seed).standard_normal((n, first.in_features)).astype(first.weight.dtype)
    return G.forward(z)


def discriminator_surface(D: Module, lim: float = 3.0, steps: int = 80):
    """D(x) = sigmoid(logit) on a steps x steps grid over [-lim, lim]^2: returns xx, yy, prob."""
    first = _first_linear(D)
    xs = np.linspace(-lim, lim, steps)
    xx, yy = np.meshgrid(xs, xs)
    grid = np.c_[xx.ravel(), yy.ravel()].astype(first.weight.dtype)
    return xx, yy, sigmoid(D.forward(grid)).reshape(xx.shape)


def train_gan(G: Module, D: Module, opt_G, opt_D, sample_real, num_steps: int, batch_size: int = 256,
              d_steps: int = 1, generator_loss: str = "non_saturating", seed: int = 0,
              snapshot_steps=(), n_snapshot_samples: int = 1000, surface_lim: float = 3.0,
              surface_steps: int = 80, progress: bool = False, num_threads: int | None = 1,
              lr_schedulers=(), on_divergence: str = "raise") -> GANHistory:
    """Train G and D for ``num_steps`` GAN steps; ``sample_real(n)`` returns an (n, 2) real batch.

    Each step is ``d_steps`` discriminator updates and one generator update (:func:`gan_step`),
    with noise drawn from ``np.random.default_rng(seed)``. At each step in ``snapshot_steps``
    (0 = before training) the history keeps G's samples for a fixed noise batch and D's
    probability surface. Divergence is decided by the training loop's guard
    (:class:`dlcourse.train.divergence.DivergenceGuard`): the package's one rule (:class:`dlcourse.train.Divergence`,
    applied to L_D and to L_G: NaN/inf, or far above the first step's value) and its one policy
    switch: ``on_divergence='raise'`` raises :class:`dlcourse.train.TrainingDivergedError` ("diverged
    at step k"), ``'stop'`` ends training with ``history.diverged_at = k``.
    Each of ``lr_schedulers`` (e.g. ``dlcourse.optim.lr_scheduler.LinearLR`` on each
    optimizer) is stepped once after every GAN step.
    ``num_threads`` limits NumPy's BLAS threads while training (1 by default: for matrices this
    small, extra threads cost more in synchronisation than they save, up to 10x on a busy machine).
    """
    guard = DivergenceGuard("train_gan", on_divergence)  # the training loop's rule and policy (dlcourse.train)
    if num_steps < 0 or d_steps < 1 or batch_size < 1:
        raise ValueError(f"train_gan: expected num_steps >= 0, d_steps >= 1, batch_size >= 1, got "
                         f"{num_steps}, {d_steps}, {batch_size}")
    first = _first_linear(G)
    latent_dim, dtype = first.in_features, first.weight.dtype
    rng = np.random.default_rng(seed)
    z_fixed = np.random.default_rng(seed + 1).standard_normal((n_snapshot_samples, latent_dim)).astype(dtype)
    snapshot_steps = set(snapshot_steps)
    history = GANHistory()

    def snapshot(step):
        xx, yy, prob = discriminator_surface(D, surface_lim, surface_steps)
        history.grid = (xx, yy)
        history.snapshots.append(Snapshot(step, G.forward(z_fixed).copy(), prob))

    if 0 in snapshot_steps:
        snapshot(0)
    steps = range(1, num_steps + 1)
    if progress:
        from tqdm.auto import tqdm
        steps = tqdm(steps, desc="GAN steps", leave=False)
    t0 = time.perf_counter()
    with runtime.num_threads(num_threads, torch=False):
        for step in steps:
            real = [sample_real(batch_size) for _ in range(d_steps)]
            z_D = [rng.standard_normal((batch_size, latent_dim)).astype(dtype) for _ in range(d_steps)]
            z_G = rng.standard_normal((batch_size, latent_dim)).astype(dtype)
            # None when the step blew up (a NaN loss, or a layer refusing the NaN of blown-up weights)
            stats = guard.attempt(lambda: gan_step(G, D, opt_G, opt_D, real, z_D, z_G, generator_loss), G, D)
            losses = {"L_D": float(np.mean(stats["loss_D"])), "L_G": stats["loss_G"]} if stats is not None else \
                {"L_D": math.nan, "L_G": math.nan}
            try:
                guard.check(step, losses)  # each loss against its own first value
            except Diverged as d:
                history.diverged_at = step
                guard.stop_or_raise(d, _("GAN training diverged at step {step} of {num_steps} "
                                         "({losses}); try smaller learning rates").format(
                    step=step, num_steps=num_steps, losses=d.reason))
                break
            history.loss_D.append(float(np.mean(stats["loss_D"])))
            history.loss_G.append(stats["loss_G"])
            history.D_real.append(stats["D_real"])
            history.D_fake.append(stats["D_fake"])
            for scheduler in lr_schedulers:
                scheduler.step()
            if step in snapshot_steps:
                snapshot(step)
    history.seconds = time.perf_counter() - t0
    return history


@dataclass
class Coverage:
    n_covered: int
    n_modes: int
    fractions: np.ndarray     # per mode: fraction of all samples within n_sigma * std of it
    high_quality: float       # fraction of samples within n_sigma * std of some mode
    n_sigma: float
    min_fraction: float

    def __str__(self) -> str:
        return _("{covered}/{modes} modes covered (>= {min_fraction:.0%} of samples within "
                 "{n_sigma:g} sigma), {high_quality:.1%} of samples within {n_sigma:g} sigma of a mode").format(
            covered=self.n_covered, modes=self.n_modes, min_fraction=self.min_fraction, n_sigma=self.n_sigma,
            high_quality=self.high_quality)

    __repr__ = __str__


def mode_coverage(samples, centers, std: float, n_sigma: float = 3.0, min_fraction: float = 0.05) -> Coverage:
    """How many modes of a Gaussian mixture a set of samples covers.

    A sample belongs to a mode when it lies within ``n_sigma * std`` of the mode's centre
    (the modes must be further apart than that). A mode is covered when at least
    ``min_fraction`` of all samples belong to it. For 8 equal modes, a perfect sampler puts
    12.5% in each (98.9% of a 2-D Gaussian lies within 3 sigma).
    """
    samples = np.asarray(samples, dtype=np.float64)
    centers = np.asarray(centers, dtype=np.float64)
    if samples.ndim != 2 or samples.shape[0] == 0 or centers.ndim != 2 or samples.shape[1] != centers.shape[1]:
        raise ValueError(f"mode_coverage: expected samples (n, d) and centers (m, d) with the same d, "
                         f"got {samples.shape} and {centers.shape}")
    if std <= 0 or n_sigma <= 0 or not 0 < min_fraction <= 1:
        raise ValueError(f"mode_coverage: expected std > 0, n_sigma > 0, 0 < min_fraction <= 1, "
                         f"got {std}, {n_sigma}, {min_fraction}")
    if not np.isfinite(samples).all():
        raise ValueError(_("mode_coverage: the samples contain NaN/inf (has the generator diverged?)"))

    dist = np.sqrt(((samples[:, None, :] - centers[None]) ** 2).sum(-1))   # (n, m)
    nearest = dist.argmin(axis=1)
    close = dist[np.arange(len(samples)), nearest] <= n_sigma * std
    counts = np.bincount(nearest[close], minlength=len(centers))
    fractions = counts / len(samples)
    return Coverage(int((fractions >= min_fraction).sum()), len(centers), fractions,
                    float(close.mean()), n_sigma, min_fraction)


def plot_gan_samples(ax, real, fake, surface=None, grid=None, title: str = "", lim: float = 3.0):
    """Real points, generated points and (optionally) D's probability surface as a background."""
    if surface is not None and grid is not None:
        cs = ax.contourf(*grid, surface, levels=np.linspace(0, 1, 11), cmap="RdBu_r", alpha=0.45)
    else:
        cs = None
    ax.scatter(real[:, 0], real[:, 1], s=3, c="#2ca02c", alpha=0.35, label=_("real"))

    ax.scatter(fake[:, 0], fake[:, 1], s=3, c="#d62728", alpha=0.5, label="G(z)")
    ax.set(xlim=(-lim, lim), ylim=(-lim, lim), aspect="equal", title=title)
    ax.set_xticks([])
    ax.set_yticks([])
    return cs
