"""The pattern every course widget follows: controls, a readout and a figure that redraws.

A widget subclasses :class:`InteractiveFigure`, builds its ``controls`` (ipywidgets,
``continuous_update=False`` on sliders so dragging does not queue retrains) and implements
``draw(**values)``, which recomputes and redraws ``self.fig`` and returns the readout text.
Observers fire synchronously, so tests drive a widget by setting a control's ``.value`` and
then checking ``n_updates``, ``readout.value`` and the figure's artists. Displaying the
widget (``display(w)`` or leaving it last in a cell) shows the controls, the readout and
the figure; without a notebook front end nothing is drawn on screen.
"""

from __future__ import annotations

import io

import ipywidgets as widgets
from IPython import get_ipython
from IPython.display import HTML, Image, clear_output, display
from matplotlib.figure import Figure

from ..config import book_build
from ..i18n import _


class InteractiveFigure:
    def __init__(self, controls: dict, nrows: int = 1, ncols: int = 1, figsize=(9, 3.6), title: str = ""):
        self.controls = controls
        # A bare Figure (not pyplot) so it is drawn only where we display it, never twice.
        self.fig = Figure(figsize=figsize, dpi=90, layout="constrained")
        axes = self.fig.subplots(nrows, ncols, squeeze=False)
        self.axes = axes.ravel().tolist()
        self.readout = widgets.HTML(value="")
        self.output = widgets.Output()
        self.title = title
        self.n_updates = 0
        self.last_error: str | None = None
        for control in controls.values():
            control.observe(self._on_change, names="value")
        self.update()

    @property
    def values(self) -> dict:
        return {name: c.value for name, c in self.controls.items()}

    def draw(self, **values) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    def _on_change(self, change) -> None:
        self.update()

    def update(self) -> None:
        for ax in self.axes:
            ax.clear()
        text = self.draw(**self.values)
        self.readout.value = f"<b>{text}</b>" if text else ""
        self.n_updates += 1
        if get_ipython() is not None:  # in a notebook; headless tests just check the figure's artists
            # Render the PNG ourselves: display(fig) shows only "<Figure ...>" text in a kernel where
            # no pyplot figure has been drawn yet (the inline backend's formatter is not set up).
            buffer = io.BytesIO()
            self.fig.savefig(buffer, format="png")
            with self.output:
                clear_output(wait=True)
                display(Image(data=buffer.getvalue(), format="png"))

    def widget(self) -> widgets.Widget:
        header = [widgets.HTML(f"<h4>{self.title}</h4>")] if self.title else []
        return widgets.VBox([*header, widgets.HBox(list(self.controls.values()),
                                                   layout=widgets.Layout(flex_flow="row wrap")),
                             self.readout, self.output])

    def _ipython_display_(self):
        display(self.widget())
        if book_build():  # the rendered book: no kernel behind the page
            self.show_static()

    def show_static(self) -> None:
        """Show the current figure and readout as plain HTML (what the book renders in place of the controls)."""
        import base64

        buffer = io.BytesIO()
        self.fig.savefig(buffer, format="png")
        png = base64.b64encode(buffer.getvalue()).decode("ascii")
        settings = ", ".join(f"{getattr(c, 'description', name) or name} = {c.value}"
                             for name, c in self.controls.items())
        title = (_("Interactive widget: {title}").format(title=self.title) if self.title
                 else _("Interactive widget"))
        note = _("{title} — shown here as the figure it drew ({settings}). Moving the controls needs a live kernel: "
                 "launch this chapter on Binder or in JupyterLab (links at the top of the page).").format(
            title=title, settings=settings)
        alt = self.title or _("widget figure")  # _() outside the f-string: babel reads it there on every Python
        display(HTML(
            f'<div class="dlcourse-static-widget"><p><em>{note}</em></p>'
            f'<img alt="{alt}" src="data:image/png;base64,{png}"/>'
            f"<p>{self.readout.value}</p></div>"))

