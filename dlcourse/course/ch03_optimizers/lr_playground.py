"""Chapter 3 widget: the learning-rate playground.

Pick an optimizer, a learning rate (log scale, 1e-5 ... 10), momentum / betas where they apply
and a number of steps. Every change retrains two small problems from the same start with
``dlcourse.optim``: a point on a 2-D loss surface (its trajectory is drawn on the contour plot)
and a small MLP on the two-moons data (full-batch, its decision boundary is drawn). Both loss
curves share one plot. A learning rate that blows a run up shows "diverged at step k" in the
plot and the readout instead of raising or drawing NaN.

``playground.controls["lr"]`` is the learning-rate slider; ``playground.readout.value`` holds
the final losses; ``playground.result`` the last runs (for tests and curious learners).
"""

from __future__ import annotations

import time

import ipywidgets as widgets
import numpy as np
from matplotlib.ticker import FuncFormatter, LogLocator, NullLocator

from dlcourse import optim
from dlcourse.course.ch03_optimizers.surfaces import SURFACES, run_on_surface
from dlcourse.course.ch03_optimizers.toy_training import accuracy, make_mlp, train_classifier
from dlcourse.course.widget import InteractiveFigure
from dlcourse.data import make_moons
from dlcourse.i18n import _, translate_figure_text
from dlcourse.plotting import PALETTE, plot_decision_boundary
from dlcourse.runtime import num_threads

# the playground's choices -> (which of momentum / beta1 / beta2 it uses, the name in dlcourse.optim.OPTIMIZERS
# (the registry), its settings)
PLAYGROUND_OPTIMIZERS = {
    "SGD": (("momentum",), "sgd", lambda m, b1, b2: dict(momentum=m)),
    "SGD + Nesterov": (("momentum",), "sgd", lambda m, b1, b2: dict(momentum=m, nesterov=m > 0)),
    "Adagrad": ((), "adagrad", lambda m, b1, b2: {}),
    "RMSprop": (("momentum", "beta2"), "rmsprop", lambda m, b1, b2: dict(alpha=b2, momentum=m)),
    "Adam": (("beta1", "beta2"), "adam", lambda m, b1, b2: dict(betas=(b1, b2))),
    "AdamW": (("beta1", "beta2"), "adamw", lambda m, b1, b2: dict(betas=(b1, b2))),
}

_PLAIN_LOG_FORMAT = FuncFormatter(lambda v, _: f"1e{round(np.log10(v))}" if v > 0 else "")


def make_playground_optimizer(name: str, params, lr: float, momentum: float = 0.0, beta1: float = 0.9,
                              beta2: float = 0.999):
    """The playground's optimizer ``name`` (a key of ``PLAYGROUND_OPTIMIZERS``) with these settings, from the registry
    :func:`dlcourse.optim.make_optimizer`."""
    if name not in PLAYGROUND_OPTIMIZERS:
        raise ValueError(f"make_playground_optimizer: expected one of {list(PLAYGROUND_OPTIMIZERS)}, got {name!r}")
    _, registry_name, settings = PLAYGROUND_OPTIMIZERS[name]
    return optim.make_optimizer(registry_name, params, lr=lr, **settings(momentum, beta1, beta2))


class LRPlayground(InteractiveFigure):
    """The learning-rate playground: ``LRPlayground()`` and display it (leave it last in a cell)."""

    def __init__(self, optimizer: str = "SGD", lr: float = 0.05, num_steps: int = 150, surface: str = "quadratic",
                 n_samples: int = 200, hidden_sizes=(16, 16), seed: int = 0):
        self.X, self.y = make_moons(n_samples, noise=0.2, seed=seed)
        self.hidden_sizes, self.seed = tuple(hidden_sizes), seed
        self._surfaces = {name: make() for name, make in SURFACES.items()}
        self._meshes = {}
        self.result: dict = {}
        self.seconds_per_update: float = 0.0
        slider = dict(continuous_update=False, style={"description_width": "initial"})
        controls = {
            "lr": widgets.FloatLogSlider(value=lr, base=10, min=-5, max=1, step=0.1, description=_("learning rate"),
                                         readout_format=".2g", **slider),
            "optimizer": widgets.Dropdown(options=list(PLAYGROUND_OPTIMIZERS), value=optimizer,
                                          description=_("optimizer")),
            "momentum": widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description=_("momentum"),
                                            **slider),
            "beta1": widgets.FloatSlider(value=0.9, min=0.0, max=0.99, step=0.01, description="β1", **slider),
            "beta2": widgets.FloatSlider(value=0.999, min=0.9, max=0.9999, step=0.0001, description="β2 / α",
                                         readout_format=".4f", **slider),
            "num_steps": widgets.IntSlider(value=num_steps, min=10, max=1000, step=10, description=_("steps"),
                                           **slider),
            "surface": widgets.Dropdown(options=list(SURFACES), value=surface, description=_("surface")),
        }
        super().__init__(controls, nrows=1, ncols=3, figsize=(12, 3.9), title=_("The learning-rate playground"))
        # Lay the figure out once, then freeze it: constrained layout re-measures every tick label on each
        # redraw, which took over half of the drawing time.
        engine = self.fig.get_layout_engine()
        if engine is not None:
            engine.execute(self.fig)
            self.fig.set_layout_engine("none")

    # -- training -------------------------------------------------------------------------
    def _run(self, optimizer, lr, momentum, beta1, beta2, num_steps, surface):
        s = self._surfaces[surface]

        def factory(ps):
            return make_playground_optimizer(optimizer, ps, lr, momentum, beta1, beta2)

        traj = run_on_surface(s, factory, num_steps)
        model = make_mlp(2, self.hidden_sizes, 2, seed=self.seed)
        run = train_classifier(model, self.X, self.y, factory(model.parameters()), num_epochs=num_steps,
                               evaluate=False)
        return s, traj, model, run

    # -- drawing --------------------------------------------------------------------------
    def draw(self, lr, optimizer, momentum, beta1, beta2, num_steps, surface):
        t0 = time.perf_counter()
        with num_threads(1, torch=False):  # tiny matrices: extra BLAS threads only add overhead
            text = self._draw(lr, optimizer, momentum, beta1, beta2, num_steps, surface)
        self.seconds_per_update = time.perf_counter() - t0
        return text

    def _draw(self, lr, optimizer, momentum, beta1, beta2, num_steps, surface):
        uses = PLAYGROUND_OPTIMIZERS[optimizer][0]
        for name in ("momentum", "beta1", "beta2"):
            self.controls[name].disabled = name not in uses
        s, traj, model, run = self._run(optimizer, lr, momentum, beta1, beta2, num_steps, surface)
        self.result = {"trajectory": traj, "mlp_run": run, "model": model}
        ax_s, ax_l, ax_b = self.axes
        shown = {"momentum": (_("momentum"), momentum), "beta1": ("β1", beta1),
                 "beta2": ("α" if optimizer == "RMSprop" else "β2", beta2)}
        label = optimizer + "".join(f", {name} {value:g}" for key, (name, value) in shown.items() if key in uses)

        # 1. the trajectory on the surface
        if surface not in self._meshes:
            self._meshes[surface] = s.mesh(100)
        xx, yy, zz = self._meshes[surface]
        zz_plot = np.log10(zz - zz.min() + 1e-3) if s.log_contours else zz
        ax_s.contour(xx, yy, zz_plot, levels=20, cmap="Greys", linewidths=0.6)
        ax_s.plot(*s.minimum, marker="*", color="k", markersize=10, linestyle="none")
        path = np.clip(traj.path, [s.xlim[0] - 1, s.ylim[0] - 1], [s.xlim[1] + 1, s.ylim[1] + 1])
        ax_s.plot(path[:, 0], path[:, 1], "-o", color=PALETTE[3], markersize=2, linewidth=1)
        # plain-text labels and few ticks: mathtext and tick creation were most of the drawing time
        ax_s.set(xlim=s.xlim, ylim=s.ylim, xlabel="w₁", ylabel="w₂",
                 title=_("{surface}: trajectory").format(surface=translate_figure_text(s.name)))


        # 2. both loss curves (gap to the minimum for the surface, so both fit a log scale)
        f_min = s(np.asarray(s.minimum, dtype=float))
        gap = np.maximum(traj.losses - f_min, 1e-12)
        ax_l.plot(np.arange(len(gap)), gap, color=PALETTE[3], label=_("surface: f(w) − f*"))
        if run.step_losses:
            ax_l.plot(np.arange(len(run.step_losses)), run.step_losses, color=PALETTE[0], label=_("MLP: training loss"))
        ax_l.set(xlabel=_("step"), ylabel=_("loss"), yscale="log", title=_("loss curves"), xlim=(0, num_steps))
        ax_l.yaxis.set_major_locator(LogLocator(numticks=6))
        ax_l.yaxis.set_minor_locator(NullLocator())
        ax_l.yaxis.set_major_formatter(_PLAIN_LOG_FORMAT)
        ax_l.legend(loc="upper right")

        # 3. the MLP's decision boundary
        if run.diverged_at is None:
            plot_decision_boundary(ax_b, lambda P: model(P).argmax(axis=1), self.X, self.y,
                                   title=_("MLP on two moons: decision boundary"), steps=80)
            ax_b.set(xlabel="x₁", ylabel="x₂")
        else:
            ax_b.scatter(self.X[:, 0], self.X[:, 1], c=[PALETTE[k] for k in self.y], s=10)
            ax_b.set(xlabel="x₁", ylabel="x₂", title=_("MLP on two moons"))

        # what the readout says, as numbers (None: did not diverge), so code can check it in any language
        self.surface_diverged_at, self.mlp_diverged_at = traj.diverged_at, run.diverged_at
        parts = []
        if traj.diverged_at is not None:
            msg = _("diverged at step {step}").format(step=traj.diverged_at)
            self._banner(ax_s, msg)
            parts.append(_("surface: {message}").format(message=msg))
        else:
            rose = _(" (it rose: lr too large)") if traj.final_loss > traj.losses[0] else ""
            parts.append(_("surface: final loss {loss:.4g}{rose} (minimum {minimum:.3g})").format(
                loss=traj.final_loss, rose=rose, minimum=f_min))
        if run.diverged_at is not None:
            msg = _("diverged at step {step}").format(step=run.diverged_at)
            self._banner(ax_b, msg)
            parts.append(_("MLP: {message}").format(message=msg))
        else:
            acc = accuracy(model, self.X, self.y)
            first, last = run.step_losses[0], run.step_losses[-1]
            rose = _(" (it rose from {first:.3f}: lr too large)").format(first=first) if last > first else ""
            parts.append(_("MLP: final loss {loss:.4f}{rose}, training accuracy {accuracy:.0%}").format(
                loss=last, rose=rose, accuracy=acc))
        if traj.diverged_at is not None or run.diverged_at is not None:
            self._banner(ax_l, _("diverged") + (_(" (lr too large)") if lr > 1e-3 else ""), y=0.55)
        return _("{label}, lr = {lr:.3g}, {num_steps} steps — ").format(label=label, lr=lr, num_steps=num_steps) \
            + " · ".join(parts)


    @staticmethod
    def _banner(ax, text, y=0.5):
        ax.text(0.5, y, text, transform=ax.transAxes, ha="center", va="center", color="#d62728", fontsize=11,
                bbox=dict(facecolor="white", alpha=0.9, edgecolor="#d62728"))
