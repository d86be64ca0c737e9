"""Chapter 7 widget: browse test digits with the model's predicted probabilities.

Pick which digits to browse (all of them, only the model's mistakes, or one true class) and
step through them; each shows the image and the bar chart of the ten probabilities, the
predicted class in green when right and red when wrong, the true class outlined.
The probabilities come from the caller (e.g. ``dlcourse.train.predict_proba`` in eval mode),
so the widget never runs the model and never touches its weights.
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from dlcourse.course.widget import InteractiveFigure
from dlcourse.i18n import _

RIGHT, WRONG, NEUTRAL = "#2ca02c", "#d62728", "#9ecae1"


class DigitBrowser(InteractiveFigure):
    """``DigitBrowser(images, labels, probs)``: images (N, H, W), labels (N,), probs (N, C).

    Controls: ``show`` ("all", "mistakes", or a true class 0..C-1) and ``position`` (which of
    the selected digits). ``selection(show)`` returns the indices a filter selects, in order.
    """

    def __init__(self, images, labels, probs, title: str | None = None):
        if title is None:
            title = _("Test digits and the model's probabilities")
        images, labels, probs = np.asarray(images), np.asarray(labels), np.asarray(probs, dtype=np.float64)
        if images.ndim != 3:
            raise ValueError(f"DigitBrowser: expected images of shape (N, H, W), got {images.shape}")
        n = len(images)
        if labels.shape != (n,) or probs.ndim != 2 or probs.shape[0] != n:
            raise ValueError(f"DigitBrowser: expected labels ({n},) and probabilities ({n}, C) for {n} images, "
                             f"got {labels.shape} and {probs.shape}")
        if n == 0:
            raise ValueError("DigitBrowser: expected at least one image, got 0")
        if not np.allclose(probs.sum(axis=1), 1, atol=1e-4) or probs.min() < 0:
            raise ValueError("DigitBrowser: expected probabilities (rows >= 0 summing to 1), e.g. from "
                             "predict_proba; got rows summing to "
                             f"{probs.sum(axis=1).min():.4g}..{probs.sum(axis=1).max():.4g}")
        num_classes = probs.shape[1]
        if labels.min() < 0 or labels.max() >= num_classes:
            raise ValueError(f"DigitBrowser: expected labels in [0, {num_classes}), got {labels.min()}..{labels.max()}")
        self.images, self.labels, self.probs = images, labels, probs
        self.pred = probs.argmax(axis=1)
        self._syncing = False
        options = [(_("all digits"), "all"), (_("mistakes only"), "mistakes")]
        options += [(_("true digit {k}").format(k=k), k) for k in range(num_classes)]
        controls = {
            "show": widgets.Dropdown(options=options, value="all", description=_("show")),
            "position": widgets.IntSlider(value=0, min=0, max=n - 1, description=_("digit"),
                                          continuous_update=False),
        }
        super().__init__(controls, nrows=1, ncols=2, figsize=(8, 3.2), title=title)

    def selection(self, show) -> np.ndarray:
        if show == "all":
            return np.arange(len(self.labels))
        if show == "mistakes":
            return np.flatnonzero(self.pred != self.labels)
        return np.flatnonzero(self.labels == int(show))

    def _on_change(self, change) -> None:
        if self._syncing:
            return
        if change["owner"] is self.controls["show"]:
            self._set_position_silently(0)  # a new filter starts at its first digit
        self.update()

    def _set_position_silently(self, value, maximum=None):
        slider = self.controls["position"]
        self._syncing = True
        try:
            if maximum is not None:
                slider.max = max(maximum, 0)
            slider.value = value
        finally:
            self._syncing = False

    def draw(self, show, position) -> str:
        ax_img, ax_bar = self.axes
        chosen = self.selection(show)
        self._set_position_silently(min(position, max(len(chosen) - 1, 0)), maximum=len(chosen) - 1)
        if len(chosen) == 0:
            for ax in (ax_img, ax_bar):
                ax.set_axis_off()
            ax_img.text(0.5, 0.5, _("no digit matches"), ha="center", va="center", transform=ax_img.transAxes)
            return _("no digit matches '{show}'").format(show=show)
        position = self.controls["position"].value
        i = int(chosen[position])
        true, pred, p = int(self.labels[i]), int(self.pred[i]), self.probs[i]
        ax_img.imshow(self.images[i], cmap="gray_r")
        ax_img.set_axis_off()
        ax_img.set_title(_("test image #{i}: true {true}").format(i=i, true=true))
        colors = [NEUTRAL] * len(p)
        colors[pred] = RIGHT if pred == true else WRONG
        bars = ax_bar.bar(np.arange(len(p)), p, color=colors)
        bars[true].set_edgecolor("black")
        bars[true].set_linewidth(2)
        ax_bar.set(xticks=np.arange(len(p)), ylim=(0, 1), xlabel=_("class"), ylabel=_("predicted probability"),
                   title=_("predicted {pred} (p = {p:.3f})").format(pred=pred, p=p[pred]))
        where = ({"all": _("{number} of {total} digits"), "mistakes": _("{number} of {total} mistakes")}.get(show)
                 or _("{number} of {total} true {digit}s")).format(number=position + 1, total=len(chosen), digit=show)
        verdict = _("right") if pred == true else _("wrong")
        return _("#{i}: true {true}, predicted {pred} with p = {p:.3f} ({verdict}); {where}").format(
            i=i, true=true, pred=pred, p=p[pred], verdict=verdict, where=where)


