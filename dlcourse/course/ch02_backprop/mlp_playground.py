"""Chapter 2 widget: train a 2-layer MLP by hand on spirals and watch the decision boundary.

Each change of the learning rate, hidden width or number of steps retrains the model from the
same seed with full-batch gradient descent (p.data -= lr * p.grad, which is what
``optim.SGD(params, lr)`` does; the loop is :func:`dlcourse.train.fit`) and redraws the boundary
and the loss curve. A learning rate that blows the loss up is reported as "diverged at step k"
instead of NaN (the package's one divergence rule, :class:`dlcourse.train.Divergence`).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from dlcourse import nn, optim
from dlcourse.course.widget import InteractiveFigure
from dlcourse.data import make_spirals
from dlcourse.i18n import _
from dlcourse.models import mlp
from dlcourse.plotting import plot_decision_boundary
from dlcourse.random import manual_seed
from dlcourse.train import fit


def train_by_hand(X, y, hidden_size: int, lr: float, num_steps: int, seed: int = 0, activation=nn.ReLU):
    """Full-batch gradient descent on a Linear-activation-Linear classifier.

    Returns (model, losses, diverged_at): ``diverged_at`` is the step whose loss diverged (NaN/inf
    or a blow-up past 1e4, see :class:`dlcourse.train.Divergence`; training stops there), else None.
    """
    manual_seed(seed)
    n_classes = int(y.max()) + 1
    # float32 weights cast to float64 (as this widget always drew them), so seeded runs stay the same
    model = mlp(X.shape[1], (hidden_size,), n_classes, activation=activation).double()
    losses = []
    history = fit(model, optim.SGD(model.parameters(), lr=lr), X, y, num_epochs=num_steps, batch_size=len(X),
                  shuffle=False, on_step=lambda step, loss: losses.append(loss), on_divergence="stop", progress=False)
    return model, losses, history.diverged_at


class MLPPlayground(InteractiveFigure):
    def __init__(self, X=None, y=None, num_steps: int = 300):
        if X is None:
            X, y = make_spirals(80, 3, seed=0)
        self.X, self.y = X, y
        controls = {
            "lr": widgets.FloatLogSlider(value=1.0, base=10, min=-3, max=2, step=0.1, description=_("learning rate"),
                                         continuous_update=False, readout_format=".3g"),
            "hidden_size": widgets.IntSlider(value=32, min=2, max=128, step=2, description=_("hidden width"),
                                             continuous_update=False),
            "num_steps": widgets.IntSlider(value=num_steps, min=50, max=1000, step=50, description=_("steps"),
                                           continuous_update=False),
        }
        super().__init__(controls, nrows=1, ncols=2, figsize=(9, 3.8), title=_("A 2-layer MLP trained by hand"))

    def draw(self, lr, hidden_size, num_steps):
        ax_b, ax_l = self.axes
        model, losses, diverged_at = train_by_hand(self.X, self.y, hidden_size, lr, num_steps)
        if losses:
            ax_l.plot(np.arange(1, len(losses) + 1), losses)
        ax_l.set(xlabel=_("step"), ylabel=_("cross-entropy loss"), yscale="log", title=_("training loss"))
        if diverged_at is not None:
            message = _("diverged at step {step} (lr = {lr:.3g} is too large)").format(step=diverged_at, lr=lr)
            for ax in (ax_b, ax_l):
                ax.text(0.5, 0.5, message, transform=ax.transAxes, ha="center", va="center", color="#d62728",
                        fontsize=11, bbox=dict(facecolor="white", alpha=0.9))
            ax_b.scatter(*self.X.T, c=self.y, s=10)
            ax_b.set(title=_("decision boundary"))
            return message
        plot_decision_boundary(ax_b, lambda P: model(P).argmax(axis=1), self.X, self.y,
                               title=_("decision boundary"), steps=120)
        accuracy = float(np.mean(model(self.X).argmax(axis=1) == self.y))
        if losses[-1] > losses[0]:
            return _("the loss rose from {first:.3f} to {last:.3f}: lr = {lr:.3g} is too large "
                     "(training accuracy {accuracy:.1%})").format(first=losses[0], last=losses[-1], lr=lr,
                                                                  accuracy=accuracy)
        return _("final loss {loss:.4f} after {num_steps} steps, training accuracy {accuracy:.1%}").format(
            loss=losses[-1], num_steps=num_steps, accuracy=accuracy)

