"""One plotting style for the whole course, and the few plots every chapter draws.

``use_style()`` is called by the notebooks' first cell. Every helper takes an ``ax`` and
labels its axes, so figures look the same from chapter to chapter.
"""

from __future__ import annotations

import matplotlib as mpl
import numpy as np

from .config import language
from .i18n import CJK_FONTS, install_figure_translation

PALETTE = ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
# Light versions of the first PALETTE colours, for the class regions behind the points.
CLASS_BACKGROUNDS = ["#9ecae1", "#fdae6b", "#a1d99b", "#fc9272", "#bcbddc", "#c4a59a", "#f1b6da", "#cccccc"]


def use_style() -> None:
    """The course's matplotlib style: readable fonts, light grid, no top/right spines (and Chinese texts in Chinese)."""
    mpl.rcParams.update({
        "figure.figsize": (6.4, 4.0),
        "figure.dpi": 90,
        "axes.grid": True,
        "grid.alpha": 0.3,
        "axes.spines.top": False,
        "axes.spines.right": False,
        "axes.titlesize": 12,
        "axes.labelsize": 11,
        "legend.fontsize": 9,
        "legend.frameon": False,
        "axes.prop_cycle": mpl.cycler(color=PALETTE),
        "image.cmap": "viridis",
    })
    if language() == "zh":  # Chinese figure texts: a font with the CJK glyphs, and the catalog's translations
        from matplotlib import font_manager

        installed = {f.name for f in font_manager.fontManager.ttflist}
        cjk = [name for name in CJK_FONTS if name in installed and name != "DejaVu Sans"]
        mpl.rcParams["font.sans-serif"] = CJK_FONTS + list(mpl.rcParams["font.sans-serif"])
        # a list of families falls back glyph by glyph: CJK from the CJK font, w₁ and the rest from DejaVu Sans
        mpl.rcParams["font.family"] = cjk[:1] + ["DejaVu Sans"] if cjk else ["sans-serif"]
        mpl.rcParams["axes.unicode_minus"] = False  # CJK fonts often lack U+2212
        install_figure_translation()


def grid_2d(X, padding: float = 0.5, steps: int = 200):
    """A (steps*steps, 2) grid covering the data, plus the two mesh arrays for contour plots."""
    x_min, x_max = X[:, 0].min() - padding, X[:, 0].max() + padding
    y_min, y_max = X[:, 1].min() - padding, X[:, 1].max() + padding
    xx, yy = np.meshgrid(np.linspace(x_min, x_max, steps), np.linspace(y_min, y_max, steps))
    return np.c_[xx.ravel(), yy.ravel()], xx, yy


def plot_decision_boundary(ax, predict, X, y, title: str = "", steps: int = 200):
    """Shade the class ``predict(points)`` (integer labels) gives each point, and scatter the data."""
    grid, xx, yy = grid_2d(X, steps=steps)
    zz = np.asarray(predict(grid)).reshape(xx.shape)
    n_classes = int(max(y.max(), zz.max())) + 1
    cmap = mpl.colors.ListedColormap(CLASS_BACKGROUNDS[:n_classes])  # class k -> the light twin of PALETTE[k]
    ax.contourf(xx, yy, zz, levels=np.arange(n_classes + 1) - 0.5, cmap=cmap, alpha=0.8)
    ax.scatter(X[:, 0], X[:, 1], c=[PALETTE[int(k) % len(PALETTE)] for k in y], s=12, edgecolors="k", linewidths=0.3)
    ax.set(xlabel="$x_1$", ylabel="$x_2$", title=title)
    return ax


def image_grid(ax, images, n_cols: int = 8, pad: int = 1, cmap: str = "gray"):
    """Tile (N, H, W) images into one picture on ``ax``."""
    images = np.asarray(images)
    n, h, w = images.shape
    n_rows = int(np.ceil(n / n_cols))
    canvas = np.full((n_rows * (h + pad) + pad, n_cols * (w + pad) + pad), np.nan)
    for i, img in enumerate(images):
        r, c = divmod(i, n_cols)
        canvas[pad + r * (h + pad):pad + r * (h + pad) + h, pad + c * (w + pad):pad + c * (w + pad) + w] = img
    ax.imshow(canvas, cmap=cmap)
    ax.set_axis_off()
    return ax
