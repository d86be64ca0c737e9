"""``dlcourse.optim``: optimizers and learning-rate schedules in NumPy, as in ``torch.optim``.

Same class names, argument names, defaults and update formulas as PyTorch, so the same
hyperparameters give the same trajectory (checked step by step in tests/test_optim.py).
"""

from . import lr_scheduler
from .adagrad import Adagrad
from .adam import Adam, AdamW
from .optimizer import Optimizer, flush_subnormal
from .rmsprop import RMSprop
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adagrad", "RMSprop", "Adam", "AdamW", "lr_scheduler",
           "flush_subnormal"]
