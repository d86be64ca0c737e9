"""Chapter 1 widget: one neuron's weights, bias and activation, and what it computes.

Left: the input plane shaded by the neuron's output a = f(w1 x1 + w2 x2 + b), with the
decision boundary w . x + b = 0 and a linearly separable data set. Right: the activation
function f(z) with the data's pre-activations marked on it (saturated points sit on the flat
parts, dead ReLU units at zero).
"""

from __future__ import annotations

import ipywidgets as widgets
import numpy as np

from dlcourse.course.widget import InteractiveFigure
from dlcourse.data import make_linearly_separable
from dlcourse.i18n import _
from dlcourse.nn import functional as F

ACTIVATIONS = {
    "sigmoid": F.sigmoid,
    "tanh": F.tanh,
    "relu": F.relu,
    "leaky_relu": lambda z: F.leaky_relu(z, 0.1),
    "gelu": F.gelu,
    "step (perceptron)": lambda z: (z > 0).astype(float),
}


class NeuronExplorer(InteractiveFigure):
    def __init__(self, X=None, y=None):
        if X is None:
            X, y = make_linearly_separable(80, seed=1)
        self.X, self.y = X, y
        slider = dict(min=-4.0, max=4.0, step=0.1, continuous_update=False, readout_format=".1f")
        controls = {
            "w1": widgets.FloatSlider(value=1.0, description=_("weight w1"), **slider),
            "w2": widgets.FloatSlider(value=-0.5, description=_("weight w2"), **slider),
            "b": widgets.FloatSlider(value=0.0, description=_("bias b"), **slider),
            "activation": widgets.Dropdown(options=list(ACTIVATIONS), value="sigmoid", description=_("activation")),
        }
        super().__init__(controls, nrows=1, ncols=2, figsize=(9, 3.8),
                         title=_("One neuron: a = f(w1 x1 + w2 x2 + b)"))

    def predict(self, X, w1, w2, b, activation):
        z = X @ np.array([w1, w2]) + b
        return z, ACTIVATIONS[activation](z)

    def draw(self, w1, w2, b, activation):
        ax_plane, ax_act = self.axes
        xx, yy = np.meshgrid(np.linspace(-2.2, 2.2, 120), np.linspace(-2.2, 2.2, 120))
        a = self.predict(np.c_[xx.ravel(), yy.ravel()], w1, w2, b, activation)[1]
        im = ax_plane.contourf(xx, yy, a.reshape(xx.shape), levels=20, cmap="RdBu_r", alpha=0.75)
        ax_plane.scatter(*self.X.T, c=np.where(self.y == 1, "#d62728", "#1f77b4"), s=14, edgecolors="k", linewidths=0.3)
        if abs(w2) > 1e-9:  # boundary w1 x1 + w2 x2 + b = 0 as a line x2(x1)
            xs = np.linspace(-2.2, 2.2, 2)
            ax_plane.plot(xs, -(w1 * xs + b) / w2, "k--", lw=1.5, label="w·x + b = 0")
        elif abs(w1) > 1e-9:
            ax_plane.axvline(-b / w1, color="k", ls="--", lw=1.5, label="w·x + b = 0")
        ax_plane.set(xlim=(-2.2, 2.2), ylim=(-2.2, 2.2), xlabel="$x_1$", ylabel="$x_2$",
                     title=_("output a over the inputs"))
        self._colorbar_mappable = im
        z_data, a_data = self.predict(self.X, w1, w2, b, activation)
        zs = np.linspace(-6, 6, 300)
        ax_act.plot(zs, ACTIVATIONS[activation](zs), color="k", lw=1.5)
        ax_act.scatter(z_data, a_data, c=np.where(self.y == 1, "#d62728", "#1f77b4"), s=10, zorder=3)
        ax_act.set(xlabel=_("pre-activation z"), ylabel=_("activation f(z)"),
                   title=_("{activation} at the data's z").format(activation=activation))
        accuracy = float(np.mean((z_data > 0) == (self.y == 1)))
        return _("w = ({w1:.1f}, {w2:.1f}), b = {b:.1f}: the boundary classifies {accuracy:.0%} of the points "
                 "correctly (class 1 where z > 0)").format(w1=w1, w2=w2, b=b, accuracy=accuracy)

