"""dlcourse: the deep-learning course's algorithms in NumPy, with PyTorch's API, checked against PyTorch."""

from . import nn, optim
from .compare import cmp, compare
from .config import pick, quick_mode
from .gradcheck import gradcheck
from .random import get_rng, manual_seed
from .runtime import best_device, keep_freed_memory, time_side_by_side

__version__ = "0.1.0"

keep_freed_memory()  # large NumPy temporaries are reused, not page-faulted in again on every step (runtime.py)

__all__ = [
    "nn", "optim", "compare", "cmp", "best_device", "time_side_by_side", "gradcheck",
    "quick_mode", "pick", "manual_seed", "get_rng", "__version__",
]
