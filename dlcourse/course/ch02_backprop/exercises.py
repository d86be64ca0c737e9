"""Chapter 2 build-it steps and exercises: the chain rule, Linear's backward pass, softmax + cross-entropy, and a
scalar autograd engine.

In the lesson (each used by the cells after it): ``ch2.sigmoid_output_delta``, ``ch2.linear_backward``,
``ch2.softmax_ce_grad`` (the spiral MLP trains with these two), ``ch2.value_ops`` and ``ch2.value_backward`` (the
learner's ``Value`` class, tested through :mod:`.engine`'s probes). For practice at the end: ``ch2.bce``,
``ch2.mse_grad``.
"""

import numpy as np

from ..exercises import exercise
from . import engine


def _rng():
    return np.random.default_rng(202)


def _delta_cases():
    rng = _rng()
    return [(np.array([0.7]), np.array([1.0])), (rng.uniform(0.05, 0.95, 5), rng.integers(0, 2, 5).astype(float)),
            (np.array([0.5, 0.999]), np.array([0.5, 0.0]))]


@exercise("ch2.sigmoid_output_delta", _delta_cases,
          hints=["Write the chain rule from the loss J down to the pre-activation z: which two derivatives are "
                 "multiplied, and in which order?",
                 "dJ/dz = dJ/da * da/dz. With J = (a - y)^2 the first factor is 2 (a - y); with a = sigma(z) the "
                 "second is sigma'(z), which you can write with a alone.",
                 "sigma'(z) = a (1 - a), so dJ/dz = 2 (a - y) a (1 - a)."],
          wrong=lambda a, y: 2 * (a - y))
def sigmoid_output_delta(a, y):
    """dJ/dz for J = (a - y)^2 per sample, where the output a = sigma(z) is given (any shape)."""
    return 2 * (a - y) * a * (1 - a)


def _linear_cases():
    rng = _rng()
    return [(rng.standard_normal((4, 3)), rng.standard_normal((2, 3)), rng.standard_normal((4, 2))),
            (rng.standard_normal((1, 5)), rng.standard_normal((5, 5)), rng.standard_normal((1, 5))),
            (rng.standard_normal((7, 2)), rng.standard_normal((3, 2)), rng.standard_normal((7, 3)))]


@exercise("ch2.linear_backward", _linear_cases,
          hints=["Each gradient has the shape of what it differentiates: dx like x (N, in), dW like W (out, in), "
                 "db like b (out,). Which products of grad_out (N, out), W and x have those shapes?",
                 "Differentiate Y_nk = sum_i x_ni W_ki + b_k entry by entry: dL/dx_ni sums over k, dL/dW_ki sums over "
                 "the batch n, and so does dL/db_k.",
                 "dx = grad_out @ W, dW = grad_out.T @ x, db = grad_out.sum(axis=0)."],
          wrong=lambda x, W, g: (g @ W, x.T @ g, g.sum(axis=0)))
def linear_backward(x, W, grad_out):
    """Gradients (dx, dW, db) of y = x W^T + b: x (N, in), W (out, in), grad_out = dL/dy (N, out)."""
    return grad_out @ W, grad_out.T @ x, grad_out.sum(axis=0)


def _ce_cases():
    rng = _rng()
    return [(rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])), (np.array([[2.0, -1.0]]), np.array([1])),
            (np.array([[500.0, 0.0, -500.0], [0.0, 0.0, 0.0]]), np.array([2, 0]))]


def _ce_no_mean(logits, labels):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p


@exercise("ch2.softmax_ce_grad", _ce_cases,
          hints=["The derivation above ends in a very short formula per sample; the loss is the mean over the N "
                 "samples of the batch.",
                 "Per sample, dL/dz = p - y with p = softmax(z) and y the one-hot label; the mean over N samples "
                 "divides every row by N. Use a softmax that does not overflow (case 3 has logits of 500).",
                 "p = stable softmax of logits; p[np.arange(N), labels] -= 1; return p / N."],
          wrong=_ce_no_mean)
def softmax_ce_grad(logits, labels):
    """dL/dlogits (N, C) of the mean softmax cross-entropy of logits (N, C) against integer labels (N,)."""
    return _ce_no_mean(logits, labels) / len(labels)


def _op_cases():
    return [("add", 2.0, -3.0), ("mul", 2.0, -3.0), ("mul", -1.5, 0.25), ("tanh", 0.5, 0.0), ("tanh", -2.0, 0.0),
            ("relu", 1.5, 0.0), ("relu", -0.5, 0.0), ("exp", 0.3, 0.0), ("exp", -1.2, 0.0)]


def _value_ops_no_local_derivative(op, a, b):
    """A typical slip: every _backward passes out.grad through unchanged (forgets the local derivative)."""
    data, _, _ = _value_ops(op, a, b)
    return data, 1.0, (1.0 if op in ("add", "mul") else 0.0)


_value_ops = engine.op_probe(engine.Value)
_value_ops.__wrapped__ = engine.Value  # solution() shows the reference class, not this probe
exercise("ch2.value_ops", _op_cases,
         hints=["Each _backward adds to its inputs' .grad: out.grad (the gradient arriving from above) times the "
                "local derivative of this one operation.",
                "The local derivatives: d(a b)/da = b; tanh'(x) = 1 - tanh(x)^2 (t is already computed); ReLU'(x) is 1 "
                "for x > 0 else 0; exp'(x) = exp(x). Use .data, the numbers, not the Values.",
                "For the product: self.grad += other.data * out.grad and other.grad += self.data * out.grad; for tanh "
                "self.grad += (1 - t**2) * out.grad."],
         wrong=_value_ops_no_local_derivative)(_value_ops)


def _graph_cases():
    rng = _rng()
    worked = engine.mlp_2_3_1_inputs([0.35, 0.9], 0.5, [[0.1, 0.8], [0.4, -0.6], [-0.3, 0.5]], [0.1, -0.2, 0.05],
                                     [0.3, -0.9, 0.6], -0.1)
    return [("square", np.array([1.5])), ("sum_of_products", np.array([2.0, -1.0, 0.5])),
            ("shared_node", np.array([0.8, -0.6, 1.3])),
            ("neuron", rng.standard_normal(5)), ("exp_chain", np.array([0.7, -0.4])),
            ("mlp_2_3_1", worked), ("mlp_2_3_1", rng.standard_normal(16))]


def _value_graph_unsorted(kind, inputs):
    """A typical slip: backward() calls each node's _backward in the order the graph is discovered from the output
    (breadth first) instead of a topological order, so a node can pass its gradient on before it is complete."""
    out, leaves = engine._build(engine.Value, kind, inputs)
    out.grad = 1.0
    queue, seen = [out], set()
    while queue:
        node = queue.pop(0)
        if node not in seen:
            seen.add(node)
            node._backward()
            queue.extend(node._prev)
    return out.data, np.array([leaf.grad for leaf in leaves])


_value_graph = engine.graph_probe(engine.Value)
_value_graph.__wrapped__ = engine.Value.backward
exercise("ch2.value_backward", _graph_cases,
         hints=["backward() must call every node's _backward exactly once, and a node only after every node that "
                "uses it has added its share to that node's .grad.",
                "Order the nodes topologically: a depth-first search that appends a node after all of its _prev. Then "
                "set self.grad = 1 and walk that list from the end.",
                "topo, seen = [], set(); def build(v): if v not in seen: seen.add(v); [build(p) for p in v._prev]; "
                "topo.append(v). Then build(self), self.grad = 1.0, and for v in reversed(topo): v._backward()."],
         wrong=_value_graph_unsorted)(_value_graph)


# ---- practice at the end of the chapter ----

def _bce_cases():
    rng = _rng()
    return [(np.array([0.9, 0.2]), np.array([1.0, 0.0])),
            (rng.uniform(0.05, 0.95, 6), rng.integers(0, 2, 6).astype(float))]


@exercise("ch2.bce", _bce_cases,
          hints=["The loss must be positive for every sample and grow when p moves away from y; check your formula "
                 "on p = 0.9, y = 0.",
                 "One minus sign covers both terms: -[y log p + (1 - y) log(1 - p)], then the mean over samples.",
                 "float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))."],
          wrong=lambda p, y: np.mean(-y * np.log(p) + (1 - y) * np.log(1 - p)))
def bce(p, y):
    """Mean binary cross-entropy of probabilities p against labels y in {0, 1}."""
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _mse_cases():
    rng = _rng()
    return [(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])),
            (rng.standard_normal((4, 2)), rng.standard_normal((4, 2)))]


@exercise("ch2.mse_grad", _mse_cases,
          hints=["Differentiate L = (1/n) sum_i (y_hat_i - y_i)^2 with respect to one y_hat_i; n counts every entry.",
                 "Mind two things: the sign (the gradient points towards larger loss, i.e. away from y) and the 1/n.",
                 "2 * (y_hat - y) / y_hat.size."],
          wrong=lambda y_hat, y: 2 * (y - y_hat))
def mse_grad(y_hat, y):
    """dL/dy_hat of the mean squared error over all n entries."""
    return 2 * (y_hat - y) / y_hat.size
