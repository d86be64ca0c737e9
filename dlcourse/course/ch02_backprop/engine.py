"""A scalar autograd engine in the spirit of micrograd: the course's reference for chapter 2's build-it step.

A :class:`Value` holds one number (``data``), the gradient of the final output with respect to it
(``grad``), the Values it was computed from (``_prev``) and a closure ``_backward`` that pushes its own
gradient to those inputs with the local derivative (the chain rule, one node at a time).
``backward()`` orders the graph topologically and calls every ``_backward`` from the output down.

The learner writes the same class in the notebook. :func:`op_probe` and :func:`graph_probe` turn any
such class into plain functions of numbers, so that the exercise checker can test it on hidden cases
(``check("ch2.value_ops", op_probe(Value))``); the functions carry the class as ``.Value``.
"""

from __future__ import annotations

import math

import numpy as np


class Value:
    """One scalar in a computational graph, with its gradient."""

    def __init__(self, data, _prev=(), _op=""):
        self.data = data
        self.grad = 0.0
        self._backward = lambda: None  # set by the operation that created this Value
        self._prev = tuple(_prev)
        self._op = _op

    def __add__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data + other.data, (self, other), "+")

        def _backward():
            self.grad += out.grad            # d(a + b)/da = 1
            other.grad += out.grad

        out._backward = _backward
        return out

    def __mul__(self, other):
        other = other if isinstance(other, Value) else Value(other)
        out = Value(self.data * other.data, (self, other), "*")

        def _backward():
            self.grad += other.data * out.grad   # d(a b)/da = b
            other.grad += self.data * out.grad

        out._backward = _backward
        return out

    def tanh(self):
        t = math.tanh(self.data)
        out = Value(t, (self,), "tanh")

        def _backward():
            self.grad += (1 - t * t) * out.grad  # tanh' = 1 - tanh^2, from the output

        out._backward = _backward
        return out

    def relu(self):
        out = Value(self.data if self.data > 0 else 0.0, (self,), "relu")

        def _backward():
            self.grad += (1.0 if self.data > 0 else 0.0) * out.grad

        out._backward = _backward
        return out

    def exp(self):
        e = math.exp(self.data)
        out = Value(e, (self,), "exp")

        def _backward():
            self.grad += e * out.grad            # exp' = exp

        out._backward = _backward
        return out

    def log(self):
        out = Value(math.log(self.data), (self,), "log")

        def _backward():
            self.grad += out.grad / self.data    # log'(x) = 1 / x

        out._backward = _backward
        return out

    def backward(self):
        """Fill ``grad`` of every Value this one depends on: d(self)/d(node)."""
        order, seen = [], set()

        def visit(node):                         # depth first: a node after everything it was computed from
            if node not in seen:
                seen.add(node)
                for parent in node._prev:
                    visit(parent)
                order.append(node)

        visit(self)
        self.grad = 1.0
        for node in reversed(order):             # the output first, each node before its inputs
            node._backward()

    # Conveniences built from the operations above (given in the notebook, not part of the exercise).
    def __neg__(self):
        return self * -1.0

    def __sub__(self, other):
        return self + (-other)

    def __radd__(self, other):
        return self + other

    def __rmul__(self, other):
        return self * other

    def __rsub__(self, other):
        return (-self) + other

    def __truediv__(self, number):
        """Division by a number (enough for a mean over samples): a / n = a * (1 / n)."""
        return self * (1.0 / number)

    def sigmoid(self):
        """sigma(z) = (1 + tanh(z / 2)) / 2: the sigmoid from tanh, + and x (no division needed)."""
        return (self * 0.5).tanh() * 0.5 + 0.5

    def __repr__(self):
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"


# ---- turning a learner's class into functions the checker can test ----

# Each operation the probe builds from leaves x and y (Values) and b (the same number, plain): the first six are one
# node each (the local rules the learner writes, + and log given); "square" and "double" use one leaf twice in one
# node; the rest mix Values with plain numbers, so a missing number -> Value conversion shows.
_OP_BUILDERS = {
    "add": lambda x, y, b: x + y,
    "mul": lambda x, y, b: x * y,
    "tanh": lambda x, y, b: x.tanh(),
    "relu": lambda x, y, b: x.relu(),
    "exp": lambda x, y, b: x.exp(),
    "log": lambda x, y, b: x.log(),
    "square": lambda x, y, b: x * x,
    "double": lambda x, y, b: x + x,
    "sub": lambda x, y, b: x - y,
    "neg": lambda x, y, b: -x,
    "add_number": lambda x, y, b: x + b,
    "number_add": lambda x, y, b: b + x,
    "mul_number": lambda x, y, b: x * b,
    "number_mul": lambda x, y, b: b * x,
    "sub_number": lambda x, y, b: x - b,
    "number_sub": lambda x, y, b: b - x,
    "div_number": lambda x, y, b: x / b,
}
OPS = tuple(_OP_BUILDERS)
NUMBER_OPS = tuple(op for op in OPS if "number" in op)


class _StillEllipsis(TypeError):
    pass


def _unfinished(err: Exception) -> bool:
    return isinstance(err, TypeError) and "ellipsis" in str(err)


def _float(x):
    if x is Ellipsis or x is None:
        return x
    return float(x)


def _local_backward(out, leaves):
    """Call ``_backward`` of every node between ``out`` and ``leaves``, output first (the probe's own walk, so
    that the learner's ``backward()`` is not needed yet; a node reached twice runs once)."""
    order, seen = [], {id(leaf) for leaf in leaves}

    def visit(node):
        if id(node) not in seen:
            seen.add(id(node))
            for parent in getattr(node, "_prev", ()):
                visit(parent)
            order.append(node)

    visit(out)
    for node in reversed(order):
        node._backward()


def op_probe(value_cls):
    """``f(op, a, b, upstream=-1.5, grads=(0.25, -0.75)) -> (out.data, x.grad, y.grad)``: one operation of value_cls.

    ``x = value_cls(a)`` and ``y = value_cls(b)`` start with ``.grad`` set to ``grads`` (as if other uses of them had
    already added theirs, which ``+=`` must keep); ``out.grad`` is set to ``upstream`` (the gradient arriving from
    above, which every local rule multiplies), then the ``_backward`` of the new nodes run, output first, without
    the learner's ``backward()``. The operations with ``number`` in their name use ``b`` as a plain number (``x + b``,
    ``b * x``, ``b - x``, ``x / b``...), so ``y`` is not part of them and its gradient stays ``grads[1]``.
    A ``...`` still in the learner's code reads as "not implemented yet".
    """
    def value_ops(op, a, b, upstream=-1.5, grads=(0.25, -0.75)):
        if op not in _OP_BUILDERS:
            raise ValueError(f"op_probe: expected one of {OPS}, got {op!r}")
        try:
            x, y = value_cls(float(a)), value_cls(float(b))
            x.grad, y.grad = float(grads[0]), float(grads[1])
            out = _OP_BUILDERS[op](x, y, float(b))
            if out is Ellipsis or out.data is Ellipsis:
                return Ellipsis, 0.0, 0.0
            out.grad = float(upstream)
            _local_backward(out, (x, y))
            return _float(out.data), _float(x.grad), _float(y.grad)
        except TypeError as err:
            if _unfinished(err):
                raise NotImplementedError from err
            raise
    value_ops.Value = value_cls
    return value_ops


# The graphs the backward check builds: each reuses a node somewhere, so a missing "+=" or a wrong order shows.
GRAPHS = ("square", "sum_of_products", "shared_node", "neuron", "exp_chain", "relu_product", "numbers",
          "cross_entropy", "mlp_2_3_1")


def _build(value_cls, kind, inputs):
    """Build graph ``kind`` from ``inputs`` (a 1-D array) with ``value_cls``; returns (output, leaves)."""
    leaves = [value_cls(float(v)) for v in inputs]
    if kind == "square":                       # x * x + x: one leaf used three times
        x, = leaves
        return x * x + x, leaves
    if kind == "sum_of_products":              # (a b + c) * (a + c), with a and c reused
        a, b, c = leaves
        return (a * b + c) * (a + c), leaves
    if kind == "shared_node":                  # t = a b feeds the output directly and through tanh(t c)
        a, b, c = leaves
        t = a * b
        return t + (t * c).tanh(), leaves
    if kind == "neuron":                       # tanh(w1 x1 + w2 x2 + bias)
        x1, x2, w1, w2, bias = leaves
        return (w1 * x1 + w2 * x2 + bias).tanh(), leaves
    if kind == "exp_chain":                    # relu(exp(a) * a - b) + exp(b)
        a, b = leaves
        return (a.exp() * a + b * -1.0).relu() + b.exp(), leaves
    if kind == "relu_product":                 # relu(a) b + a b: relu's upstream gradient is b, not 1
        a, b = leaves
        return a.relu() * b + a * b, leaves
    if kind == "numbers":                      # Values mixed with plain numbers on both sides; a (> 0) is the left
        a, b = leaves                          # operand of two sums and feeds a log
        return 2 + (1 - a) * (a / 2) + 3 * b - (a + 1) * (a + b) + a.log() * a, leaves
    if kind == "cross_entropy":                # log(e^a + e^b + e^c) - a: the loss of class 0 for logits a, b, c
        a, b, c = leaves
        return (a.exp() + b.exp() + c.exp()).log() - a, leaves
    if kind == "mlp_2_3_1":                    # chapter 2's worked network: 2 inputs, 3 sigmoid units, 1 sigmoid out
        x = leaves[0:2]
        W = [leaves[2:4], leaves[4:6], leaves[6:8]]
        b, v, c, y = leaves[8:11], leaves[11:14], leaves[14], leaves[15]
        hidden = [_sigmoid(W[j][0] * x[0] + W[j][1] * x[1] + b[j]) for j in range(3)]
        out = _sigmoid(v[0] * hidden[0] + v[1] * hidden[1] + v[2] * hidden[2] + c)
        err = out + y * -1.0
        return err * err, leaves
    raise ValueError(f"graph_probe: expected one of {GRAPHS}, got {kind!r}")


def _sigmoid(z):
    return (z * 0.5).tanh() * 0.5 + 0.5


def graph_probe(value_cls):
    """``f(kind, inputs) -> (output, gradients)``: build graph ``kind`` with ``value_cls``, call ``backward()``.

    ``gradients`` holds d(output)/d(input) for every input, in order (an array like ``inputs``).
    """
    def value_graph(kind, inputs):
        try:
            out, leaves = _build(value_cls, kind, inputs)
            out.backward()
            grads = [leaf.grad for leaf in leaves]
            if out.data is Ellipsis or any(g is Ellipsis or g is None for g in grads):
                return Ellipsis, Ellipsis
            return _float(out.data), np.array(grads, dtype=float)
        except TypeError as err:
            if _unfinished(err):
                raise NotImplementedError from err
            raise
    value_graph.Value = value_cls
    return value_graph


def mlp_2_3_1_inputs(x, y, W, b, v, c) -> np.ndarray:
    """Pack chapter 2's worked example into the flat input vector of the ``mlp_2_3_1`` graph."""
    return np.concatenate([np.ravel(x), np.ravel(W), np.ravel(b), np.ravel(v), [float(c), float(y)]]).astype(float)


def graph_size(out) -> int:
    """How many Values the graph that produced ``out`` holds (``out`` included)."""
    seen, stack = set(), [out]
    while stack:
        node = stack.pop()
        if node not in seen:
            seen.add(node)
            stack.extend(node._prev)
    return len(seen)
