"""A neural network on the scalar engine (chapter 2's capstone, in the spirit of micrograd): the course's reference
for the build-it steps ``ch2.mlp`` and ``ch2.train_step``.

A :class:`Neuron` holds its weights ``w`` (a list of Values) and bias ``b`` and computes ``tanh(w · x + b)``, or
``w · x + b`` for an output unit (``nonlin=False``); a :class:`Layer` is a list of neurons fed the same inputs; an
:class:`MLP` chains layers, tanh on every layer but the last. ``parameters()`` lists every weight and bias in a fixed
order: layer by layer, neuron by neuron, each neuron's ``w`` then its ``b`` (PyTorch's ``Linear.weight`` row by row,
with the bias after each row). :func:`train_step` is one step of full-batch gradient descent on the mean
:func:`cross_entropy`.

The learner writes the same classes and step in the notebook. :func:`mlp_probe` and :func:`train_step_probe` turn
them into plain functions of numbers that the exercise checker can test on hidden cases; the functions carry what
they test as ``.MLP`` and ``.train_step``.
"""

from __future__ import annotations

import math
import random

import numpy as np

from ...i18n import _
from .engine import Value, _float, _unfinished


class Neuron:
    """One unit: ``tanh(w · x + b)``, or ``w · x + b`` when ``nonlin`` is False (an output unit)."""

    def __init__(self, n_in, nonlin=True):
        self.w = [Value(random.uniform(-1, 1) / math.sqrt(n_in)) for _ in range(n_in)]
        self.b = Value(0.0)
        self.nonlin = nonlin

    def __call__(self, x):
        """x: a list of n_in numbers or Values. Returns one Value."""
        z = sum((w_i * x_i for w_i, x_i in zip(self.w, x)), self.b)
        return z.tanh() if self.nonlin else z

    def parameters(self):
        return self.w + [self.b]


class Layer:
    """n_out neurons, each fed the same inputs."""

    def __init__(self, n_in, n_out, nonlin=True):
        self.neurons = [Neuron(n_in, nonlin) for _ in range(n_out)]

    def __call__(self, x):
        return [neuron(x) for neuron in self.neurons]

    def parameters(self):
        return [p for neuron in self.neurons for p in neuron.parameters()]


class MLP:
    """Layers of sizes n_in -> n_outs[0] -> ... -> n_outs[-1]; tanh on every layer but the last."""

    def __init__(self, n_in, n_outs):
        sizes = [n_in] + list(n_outs)
        self.layers = [Layer(sizes[i], sizes[i + 1], nonlin=i < len(n_outs) - 1) for i in range(len(n_outs))]

    def __call__(self, x):
        for layer in self.layers:
            x = layer(x)
        return x

    def parameters(self):
        return [p for layer in self.layers for p in layer.parameters()]


def cross_entropy(logits, label):
    """-log softmax(logits)[label] for a list of Values, as log(sum_j e^(z_j - m)) + m - z_label.

    m, the largest logit, is a plain number: subtracting it changes no result and no gradient (it cancels), and
    keeps every exp(z_j - m) <= 1, the stable softmax of chapter 1.
    """
    m = max(z.data for z in logits)
    return sum((z - m).exp() for z in logits).log() + m - logits[label]


def train_step(model, X, y, lr):
    """One step of full-batch gradient descent on the mean cross-entropy; returns that loss (a float).

    model: an MLP; X: a list of N inputs (each a list of numbers); y: N integer labels; lr: the learning rate.
    """
    for p in model.parameters():
        p.grad = 0.0                     # backward() adds to .grad: last step's gradient must go first
    loss = sum(cross_entropy(model(x), label) for x, label in zip(X, y)) / len(X)
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data


# ---- turning the learner's classes and step into functions the checker can test ----

def load_weights(model, weights) -> None:
    """Set the numbers of ``model.parameters()``, in their order, to ``weights``."""
    params = list(model.parameters())
    if len(params) != len(weights):
        raise ValueError(_("parameters() returned {got} Values, expected {want} (every neuron's "
                           "weights w, then its bias b, layer by layer)").format(got=len(params), want=len(weights)))
    for p, w in zip(params, weights):
        p.data = float(w)


def n_parameters(n_in, n_outs) -> int:
    sizes = [n_in] + list(n_outs)
    return sum((sizes[i] + 1) * sizes[i + 1] for i in range(len(n_outs)))


def check_initialisation(mlp_cls, n_in=8, n_outs=(8, 8), seed=2) -> None:
    """Raise ValueError unless ``mlp_cls`` starts as the given constructors do: every bias 0, the weights of a
    neuron with n inputs uniform in [-1/sqrt(n), 1/sqrt(n)] (both signs, and filling that range: the largest
    |w| sqrt(n) of the 128 weights of an 8-8-8 network is near 1). Python's random state is put back afterwards."""
    state = random.getstate()
    random.seed(seed)
    try:
        params = [p.data for p in mlp_cls(n_in, list(n_outs)).parameters()]
    finally:
        random.setstate(state)
    if len(params) != n_parameters(n_in, n_outs):
        return                                   # load_weights names this problem
    sizes, k, scaled, biases = [n_in] + list(n_outs), 0, [], []
    for i in range(len(n_outs)):
        for _neuron in range(sizes[i + 1]):
            scaled += [w * math.sqrt(sizes[i]) for w in params[k:k + sizes[i]]]
            biases.append(params[k + sizes[i]])
            k += sizes[i] + 1
    if any(b != 0 for b in biases) or max(abs(w) for w in scaled) > 1 or max(scaled) < 0.9 or min(scaled) > -0.9:
        raise ValueError(_("the starting weights should be uniform in [-1/sqrt(n_in), 1/sqrt(n_in)] and every bias 0: "
                           "keep the given constructors (Neuron.__init__)"))


def mlp_probe(mlp_cls):
    """``f(n_in, n_outs, weights, x, upstream) -> (outputs, parameter gradients, input gradients)``.

    Builds ``mlp_cls(n_in, n_outs)``, sets its ``parameters()`` to ``weights`` in order, feeds ``x`` as Values (of
    the class its parameters have), and backpropagates ``sum_k upstream_k * output_k`` with that class's
    ``backward()``.
    """
    def mlp_forward_backward(n_in, n_outs, weights, x, upstream):
        state = random.getstate()                # the constructors draw numbers: leave the learner's seed alone
        try:
            check_initialisation(mlp_cls)
            model = mlp_cls(int(n_in), list(n_outs))
            load_weights(model, weights)
            value_cls = type(model.parameters()[0])
            inputs = [value_cls(float(v)) for v in x]
            outputs = model(inputs)
            if outputs is Ellipsis or any(o is Ellipsis for o in outputs):
                raise NotImplementedError
            if len(outputs) != len(upstream):
                raise ValueError(_("the MLP returned {got} outputs, expected {want} (one per neuron "
                                   "of the last layer)").format(got=len(outputs), want=len(upstream)))
            total = sum((o * float(g) for o, g in zip(outputs, upstream)), value_cls(0.0))
            total.backward()
            return (np.array([_float(o.data) for o in outputs]),
                    np.array([_float(p.grad) for p in model.parameters()]),
                    np.array([_float(v.grad) for v in inputs]))
        except TypeError as err:
            if _unfinished(err):
                raise NotImplementedError from err
            raise
        finally:
            random.setstate(state)
    mlp_forward_backward.MLP = mlp_cls
    return mlp_forward_backward


def train_step_probe(step):
    """``f(n_in, n_outs, weights, X, y, lr, num_steps) -> (losses, weights after)``: ``num_steps`` calls of ``step`` on
    the course's :class:`MLP` with those weights (a second step shows a gradient that was not zeroed)."""
    def train_steps(n_in, n_outs, weights, X, y, lr, num_steps):
        state = random.getstate()
        model = MLP(int(n_in), list(n_outs))
        random.setstate(state)
        load_weights(model, weights)
        X, y = [[float(v) for v in x] for x in X], [int(label) for label in y]
        try:
            losses = [step(model, X, y, float(lr)) for _ in range(int(num_steps))]
        except (TypeError, AttributeError) as err:
            if _unfinished(err) or "ellipsis" in str(err):
                raise NotImplementedError from err
            raise
        if any(loss is Ellipsis or loss is None for loss in losses):
            return Ellipsis, Ellipsis
        if any(isinstance(loss, type(model.parameters()[0])) or hasattr(loss, "_backward") for loss in losses):
            raise TypeError(_("train_step returned a Value: return loss.data, the number"))

        return np.array([_float(loss) for loss in losses]), np.array([p.data for p in model.parameters()])
    train_steps.train_step = step
    return train_steps
