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

    def sigmoid(self):
        """sigma(z) = (1 + tanh(z / 2)) / 2: the sigmoid from tanh, + and x (no division needed)."""
        return (self * 0.5).tanh() * 0.5 + 0.5

    def __repr__(self):
        return f"Value(data={self.data:.6g}, grad={self.grad:.6g})"


# ---- turning a learner's class into functions the checker can test ----

OPS = ("add", "mul", "tanh", "relu", "exp")


class _StillEllipsis(TypeError):
    pass


def _unfinished(err: Exception) -> bool:
    return isinstance(err, TypeError) and "ellipsis" in str(err)


def _float(x):
    if x is Ellipsis or x is None:
        return x
    return float(x)


def op_probe(value_cls):
    """``f(op, a, b) -> (out.data, a.grad, b.grad)`` for one operation ``op`` of ``value_cls``.

    Only that node's own ``_backward`` runs (with ``out.grad = 1``), so this tests the local rules
    without ``backward()``. ``b`` is ignored by the one-input operations (its gradient stays 0).
    A ``...`` still in the learner's code reads as "not implemented yet".
    """
    def value_ops(op, a, b):
        try:
            x, y = value_cls(float(a)), value_cls(float(b))
            if op == "add":
                out = x + y
            elif op == "mul":
                out = x * y
            elif op in ("tanh", "relu", "exp"):
                out = getattr(x, op)()
            else:
                raise ValueError(f"op_probe: expected one of {OPS}, got {op!r}")
            if out.data is Ellipsis:
                return Ellipsis, 0.0, 0.0
            out.grad = 1.0
            out._backward()
            return _float(out.data), _float(x.grad), _float(y.grad)
        except TypeError as err:
            if _unfinished(err):
                raise NotImplementedError from err
            raise
    value_ops.Value = value_cls
    return value_ops


# The graphs the backward check builds: each reuses a node somewhere, so a missing "+=" or a wrong order shows.
GRAPHS = ("square", "sum_of_products", "shared_node", "neuron", "exp_chain", "mlp_2_3_1")


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
