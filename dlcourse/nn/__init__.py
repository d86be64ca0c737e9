"""``dlcourse.nn``: the course's layers in NumPy, named and shaped as in ``torch.nn``."""

from . import functional, init
from .activation import GELU, LeakyReLU, ReLU, Sigmoid, Softmax, Tanh
from .linear import Linear
from .loss import BCELoss, BCEWithLogitsLoss, CrossEntropyLoss, MSELoss, NonFiniteLossError
from .module import Module, Sequential
from .parameter import Parameter

__all__ = [
    "functional", "init",
    "Parameter", "Module", "Sequential",
    "Linear",
    "ReLU", "Sigmoid", "Tanh", "LeakyReLU", "GELU", "Softmax",
    "MSELoss", "CrossEntropyLoss", "BCEWithLogitsLoss", "BCELoss", "NonFiniteLossError",
]
