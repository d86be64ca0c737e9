"""``dlcourse.optim``: optimizers and learning-rate schedules in NumPy, as in ``torch.optim``.

Same class names, argument names, defaults and update formulas as PyTorch, so the same
hyperparameters give the same trajectory (checked step by step in tests/library/optim/test_optim.py).
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, as_torch_state_dict, flush_subnormal
from .rmsprop import RMSprop
from .sgd import SGD

# The optimizer registry: one name -> class table for everything that picks an optimizer by name
# (the chapter-3 playground, the chapter-7 recipes). Keys are lower case; the classes' names are
# torch.optim's, so the same key finds the PyTorch twin.
OPTIMIZERS = {"sgd": SGD, "adagrad": Adagrad, "rmsprop": RMSprop, "adam": Adam, "adamw": AdamW}


def make_optimizer(name: str, params, *, library: str = "numpy", **kwargs):
    """The optimizer called ``name`` (case-insensitive key of :data:`OPTIMIZERS`) over ``params``.

    ``library='numpy'`` builds the ``dlcourse.optim`` class, ``'torch'`` the ``torch.optim`` class of
    the same name; ``kwargs`` are its hyperparameters (``lr=0.1, momentum=0.9``).
    ``make_optimizer("adam", model.parameters(), lr=1e-3)`` is ``optim.Adam(model.parameters(), lr=1e-3)``.
    """
    if not isinstance(name, str) or name.lower() not in OPTIMIZERS:
        raise ValueError(f"make_optimizer: expected an optimizer name in {sorted(OPTIMIZERS)}, got {name!r}")
    cls = OPTIMIZERS[name.lower()]
    if library == "numpy":
        return cls(params, **kwargs)
    if library == "torch":
        import torch.optim
        return getattr(torch.optim, cls.__name__)(params, **kwargs)
    raise ValueError(f"make_optimizer: expected library 'numpy' or 'torch', got {library!r}")


__all__ = ["Optimizer", "as_torch_state_dict", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "lr_scheduler",
           "flush_subnormal", "OPTIMIZERS", "make_optimizer"]
