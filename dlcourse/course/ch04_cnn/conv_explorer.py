"""Chapter 4 widget: pick or edit a 3x3 kernel, a stride and a padding, and watch the convolution.

Left: the input image with its zero padding and the receptive field of the first output
pixel outlined. Middle: the kernel's nine values. Right: the output feature map. The readout
computes the output size with the formula floor((H + 2p - k) / s) + 1 for the current
settings, and checks it against the shape ``dlcourse.nn.functional.conv2d`` returned.
"""

from __future__ import annotations

import ipywidgets as widgets
import matplotlib
import numpy as np
from matplotlib.patches import Rectangle

from dlcourse.course.widget import InteractiveFigure
from dlcourse.data.shapes import SHAPE_NAMES, draw_shape
from dlcourse.i18n import _
from dlcourse.nn.functional import conv2d, conv_output_size

KERNELS = {
    "identity": [[0, 0, 0], [0, 1, 0], [0, 0, 0]],
    "vertical edges (Sobel x)": [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]],
    "horizontal edges (Sobel y)": [[-1, -2, -1], [0, 0, 0], [1, 2, 1]],
    "all edges (Laplacian)": [[0, -1, 0], [-1, 4, -1], [0, -1, 0]],
    "box blur": [[1 / 9] * 3] * 3,
    "Gaussian blur": [[1 / 16, 2 / 16, 1 / 16], [2 / 16, 4 / 16, 2 / 16], [1 / 16, 2 / 16, 1 / 16]],
    "sharpen": [[0, -1, 0], [-1, 5, -1], [0, -1, 0]],
    "emboss": [[-2, -1, 0], [-1, 1, 1], [0, 1, 2]],
}
CUSTOM = "custom (edit the values)"


def sample_image(name: str, size: int = 20) -> np.ndarray:
    """A (size, size) test image: one of the chapter's shapes, or a checkerboard with a gradient."""
    if name in SHAPE_NAMES:
        return draw_shape(name, size=size, radius=0.33 * size, angle=0.35, width=2.0)
    if name == "checkerboard + gradient":
        yy, xx = np.mgrid[:size, :size]
        return 0.6 * ((yy // 5 + xx // 5) % 2) + 0.4 * xx / (size - 1)
    raise ValueError(f"sample_image: unknown image {name!r}")


IMAGES = (*SHAPE_NAMES, "checkerboard + gradient")


class ConvExplorer(InteractiveFigure):
    """Controls: ``image``, ``kernel`` (a named kernel or custom), ``stride``, ``padding`` and the nine
    kernel values ``k00`` ... ``k22`` (editing one switches ``kernel`` to custom)."""

    def __init__(self, image: str = "square", kernel: str = "vertical edges (Sobel x)", size: int = 20):
        self.size = size
        self._syncing = False
        values = KERNELS[kernel]
        cells = {f"k{i}{j}": widgets.FloatText(value=float(values[i][j]), step=0.5,
                                               layout=widgets.Layout(width="70px"))
                 for i in range(3) for j in range(3)}
        controls = {
            "image": widgets.Dropdown(options=list(IMAGES), value=image, description=_("image")),
            "kernel": widgets.Dropdown(options=[*KERNELS, CUSTOM], value=kernel, description=_("kernel")),
            "stride": widgets.IntSlider(value=1, min=1, max=3, description=_("stride"), continuous_update=False),
            "padding": widgets.IntSlider(value=0, min=0, max=3, description=_("padding"), continuous_update=False),
            **cells,
        }
        self._cells = cells
        super().__init__(controls, nrows=1, ncols=3, figsize=(10, 3.6), title=_("Convolution explorer"))

    # The nine value boxes and the kernel menu keep each other in sync without redrawing nine times.
    def _on_change(self, change) -> None:
        if self._syncing:
            return
        owner = change["owner"]
        self._syncing = True
        try:
            if owner is self.controls["kernel"] and change["new"] != CUSTOM:
                values = KERNELS[change["new"]]
                for i in range(3):
                    for j in range(3):
                        self._cells[f"k{i}{j}"].value = float(values[i][j])
            elif owner in self._cells.values():
                self.controls["kernel"].value = CUSTOM
        finally:
            self._syncing = False
        self.update()

    def kernel_values(self) -> np.ndarray:
        return np.array([[self._cells[f"k{i}{j}"].value for j in range(3)] for i in range(3)], dtype=np.float64)

    def widget(self) -> widgets.Widget:
        header = [widgets.HTML(f"<h4>{self.title}</h4>")] if self.title else []
        top = widgets.HBox([self.controls[k] for k in ("image", "kernel", "stride", "padding")],
                           layout=widgets.Layout(flex_flow="row wrap"))
        grid = widgets.GridBox([self._cells[f"k{i}{j}"] for i in range(3) for j in range(3)],
                               layout=widgets.Layout(grid_template_columns="repeat(3, 75px)"))
        return widgets.VBox([*header, top, widgets.HBox([widgets.HTML(_("kernel values:") + "&nbsp;"), grid]),
                             self.readout, self.output])

    def draw(self, image, kernel, stride, padding, **cells):
        ax_in, ax_k, ax_out = self.axes
        x = sample_image(image, self.size)
        w = self.kernel_values()
        H = x.shape[0]
        y = conv2d(x[None, None], w[None, None], None, stride=stride, padding=padding)[0, 0]
        oh = conv_output_size(H, 3, stride, padding)
        shown = np.pad(x, padding, constant_values=np.nan) if padding else x
        cmap = matplotlib.colormaps["gray"].with_extremes(bad="#9ecae1")  # the zero padding, in blue
        ax_in.imshow(shown, cmap=cmap, vmin=0, vmax=1)
        if padding:
            ax_in.add_patch(Rectangle((padding - 0.5, padding - 0.5), H, H, fill=False, ec="#1f77b4", lw=1))
        ax_in.add_patch(Rectangle((-0.5, -0.5), 3, 3, fill=False, ec="#d62728", lw=2))
        ax_in.set_title(_("input {h}x{w}").format(h=H, w=H)
                        + (_(" + padding {padding} (blue, zeros)").format(padding=padding) if padding else ""))
        scale = np.abs(w).max() + 1e-9
        ax_k.imshow(w, cmap="RdBu_r", vmin=-scale, vmax=scale)
        for i in range(3):
            for j in range(3):
                ax_k.text(j, i, f"{w[i, j]:.2g}", ha="center", va="center", fontsize=11,
                          color="white" if abs(w[i, j]) > 0.6 * scale else "black")
        ax_k.set_title(_("kernel: {kernel}").format(kernel=kernel) if kernel != CUSTOM else _("kernel: custom"))
        ax_out.imshow(y, cmap="gray")
        ax_out.add_patch(Rectangle((-0.5, -0.5), 1, 1, fill=False, ec="#d62728", lw=2))
        ax_out.set_title(_("output {h}x{w}").format(h=y.shape[0], w=y.shape[1]))
        for ax in self.axes:
            ax.set_xticks([])
            ax.set_yticks([])
            ax.grid(False)
        self.output_shape = y.shape
        self.output_map = y
        agrees = "✓" if y.shape == (oh, oh) else "✗"
        return _("output size = floor((H + 2p - k) / s) + 1 = floor(({H} + 2·{padding} - 3) / {stride}) + 1 = {oh}, "
                 "so the feature map is {oh}x{oh} {agrees} (conv2d returned {h}x{w})").format(
            H=H, padding=padding, stride=stride, oh=oh, agrees=agrees, h=y.shape[0], w=y.shape[1])

