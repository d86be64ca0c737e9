"""Interactive widgets of the course, one module per chapter (see ``base.py`` for the pattern)."""

from .base import InteractiveFigure

__all__ = ["InteractiveFigure"]
