"""Two-dimensional loss surfaces on which optimizers behave differently, and a runner that records trajectories.

Each :class:`Surface` gives f(w1, w2) (vectorised over meshes, for contour plots), its exact
gradient, a plotting box, a starting point and the minimiser. :func:`run_on_surface` runs any
dlcourse optimizer on it and :func:`run_on_surface_torch` a ``torch.optim`` one from the same
start; each computes its gradient at its own current point, so equal trajectories mean equal
update rules. A run that blows up stops and reports ``diverged_at`` (the step) instead of NaN.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

import numpy as np

from dlcourse.i18n import N_, translate_figure_text
from dlcourse.nn.parameter import Parameter

#: the surfaces' names as the catalog knows them (a name is built with its numbers; shown through
#: translate_figure_text, which fills a {} template)
SURFACE_NAMES = (N_("quadratic (curvatures {} and {})"), N_("quadratic (curvatures {} and {}, rotated {}°)"),
                 N_("Rosenbrock"), N_("saddle"), N_("plateau"))


@dataclass
class Surface:
    name: str
    f: Callable  # f(x, y) -> value, elementwise over arrays
    grad_xy: Callable  # grad_xy(x, y) -> (df/dx, df/dy)
    xlim: tuple
    ylim: tuple
    start: tuple
    minimum: tuple
    log_contours: bool = False
    description: str = ""

    def __call__(self, w) -> float:
        return float(self.f(w[0], w[1]))

    def grad(self, w) -> np.ndarray:
        gx, gy = self.grad_xy(w[0], w[1])
        return np.array([gx, gy], dtype=np.asarray(w).dtype)

    def mesh(self, steps: int = 120):
        xx, yy = np.meshgrid(np.linspace(*self.xlim, steps), np.linspace(*self.ylim, steps))
        return xx, yy, self.f(xx, yy)

    def plot(self, ax, levels: int = 25, steps: int = 120):
        """Contour lines of the surface (log-spaced where the surface spans decades) and its minimum."""
        xx, yy, zz = self.mesh(steps)
        if self.log_contours:
            zz = np.log10(zz - zz.min() + 1e-3)
        ax.contour(xx, yy, zz, levels=levels, cmap="Greys", linewidths=0.6)
        ax.plot(*self.minimum, marker="*", color="k", markersize=10, linestyle="none")
        ax.set(xlim=self.xlim, ylim=self.ylim, xlabel="$w_1$", ylabel="$w_2$", title=translate_figure_text(self.name))

        return ax


def ill_conditioned_quadratic(a: float = 1.0, b: float = 20.0, angle_deg: float = 0.0) -> Surface:
    """f = (a u^2 + b v^2) / 2 with (u, v) = w rotated by ``angle_deg``: curvatures a and b, condition number b / a.

    Gradient descent needs lr < 2 / b. Unrotated, the valley lies along w1, where per-coordinate methods
    (Adagrad, RMSProp, Adam) fit it exactly; rotated, no per-coordinate scaling can.
    """
    c, s = np.cos(np.radians(angle_deg)), np.sin(np.radians(angle_deg))

    def f(x, y):
        u, v = c * x + s * y, -s * x + c * y
        return 0.5 * (a * u * u + b * v * v)

    def grad_xy(x, y):
        u, v = c * x + s * y, -s * x + c * y
        gu, gv = a * u, b * v
        return c * gu - s * gv, s * gu + c * gv

    name = f"quadratic (curvatures {a:g} and {b:g}" + (f", rotated {angle_deg:g}°)" if angle_deg else ")")
    return Surface(name, f, grad_xy, (-5.0, 5.0), (-2.5, 2.5), (-4.5, 2.0), (0.0, 0.0),
                   description="a long narrow valley: a step size stable across the valley crawls along it")


def rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    """f = (a - w1)^2 + b (w2 - w1^2)^2: a curved, flat-bottomed valley with its minimum at (a, a^2)."""
    return Surface(
        "Rosenbrock",
        lambda x, y: (a - x) ** 2 + b * (y - x * x) ** 2,
        lambda x, y: (-2 * (a - x) - 4 * b * x * (y - x * x), 2 * b * (y - x * x)),
        (-2.0, 2.0), (-1.0, 3.0), (-1.5, 2.5), (a, a * a), log_contours=True,
        description="a banana-shaped valley: finding it is easy, following its curved floor is hard")


def saddle() -> Surface:
    """f = w1^2 / 2 + w2^4 / 4 - w2^2 / 2: a saddle at the origin between minima at (0, +-1)."""
    return Surface(
        "saddle",
        lambda x, y: 0.5 * x * x + 0.25 * y ** 4 - 0.5 * y * y,
        lambda x, y: (x, y ** 3 - y),
        (-2.5, 2.5), (-1.6, 1.6), (2.0, 1e-3), (0.0, 1.0),
        description="starting almost on the ridge, the escape direction has a tiny gradient")


def plateau() -> Surface:
    """f = 1 - exp(-(w1^2 + 2 w2^2) / 2): a bowl in a nearly flat plain, where gradients almost vanish."""
    def f(x, y):
        return 1.0 - np.exp(-(x * x + 2 * y * y) / 2)

    def grad_xy(x, y):
        e = np.exp(-(x * x + 2 * y * y) / 2)
        return x * e, 2 * y * e

    return Surface("plateau", f, grad_xy, (-4.0, 4.0), (-3.0, 3.0), (3.2, 2.0), (0.0, 0.0),
                   description="far from the bowl the gradient is ~1e-4: plain GD barely moves")


SURFACES = {
    "quadratic": ill_conditioned_quadratic,
    "rotated quadratic": lambda: ill_conditioned_quadratic(1.0, 20.0, angle_deg=-30.0),
    "rosenbrock": rosenbrock,
    "saddle": saddle,
    "plateau": plateau,
}


@dataclass
class Trajectory:
    path: np.ndarray  # (steps + 1, 2): the start, then the point after each step
    losses: np.ndarray  # (steps + 1,): f along the path
    diverged_at: int | None = None
    lrs: list = field(default_factory=list)

    @property
    def final_loss(self) -> float:
        return float(self.losses[-1])


def _diverged(w, loss, limit):
    return not (np.all(np.isfinite(w)) and np.isfinite(loss)) or np.max(np.abs(w)) > limit


def _trajectory(surface, point, set_grad, optimizer, num_steps, make_scheduler, limit) -> Trajectory:
    """The one loop of both runners: gradient at the current point, step, record, stop on divergence.

    Not :func:`dlcourse.train.fit`: there are no data and no model, the gradient is a formula, and
    divergence is judged by the point (a coordinate beyond ``limit`` or NaN), not by the loss, so
    that a step that overshoots far up a wall and comes back (RMSprop or Adam at a large learning
    rate on Rosenbrock) still counts as a run, as the chapter's comparisons need.
    """
    scheduler = make_scheduler(optimizer) if make_scheduler is not None else None
    path, losses, lrs = [point()], [surface(point())], []
    with np.errstate(over="ignore", invalid="ignore"):
        for step in range(1, num_steps + 1):
            set_grad(surface.grad(point()))
            lrs.append(optimizer.param_groups[0]["lr"])
            optimizer.step()
            if scheduler is not None:
                scheduler.step()
            here = point()
            loss = surface(here)
            if _diverged(here, loss, limit):
                return Trajectory(np.array(path), np.array(losses), step, lrs)
            path.append(here)
            losses.append(loss)
    return Trajectory(np.array(path), np.array(losses), None, lrs)


def run_on_surface(surface: Surface, make_optimizer, num_steps: int, start=None, make_scheduler=None,
                   limit: float = 1e6, dtype=np.float64) -> Trajectory:
    """Run ``make_optimizer([w])`` (a dlcourse optimizer) for ``num_steps`` steps from ``start``.

    ``make_scheduler(optimizer)`` (optional) is stepped after every step. The run stops when a
    coordinate leaves [-limit, limit] or turns NaN, with ``diverged_at`` set to that step.
    """
    w = Parameter(np.array(surface.start if start is None else start, dtype=dtype))

    def set_grad(g):
        w.grad = g

    return _trajectory(surface, lambda: w.data.copy(), set_grad, make_optimizer([w]), num_steps, make_scheduler,
                       limit)


def run_on_surface_torch(surface: Surface, make_optimizer, num_steps: int, start=None, make_scheduler=None,
                         limit: float = 1e6) -> Trajectory:
    """The same run with a ``torch.optim`` optimizer (float64); gradients from the same formula."""
    import torch

    w = torch.tensor(np.array(surface.start if start is None else start, dtype=np.float64), requires_grad=True)

    def set_grad(g):
        w.grad = torch.from_numpy(g)

    return _trajectory(surface, lambda: w.detach().numpy().copy(), set_grad, make_optimizer([w]), num_steps,
                       make_scheduler, limit)
