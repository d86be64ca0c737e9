"""Chapter 2 build-it steps and exercises: the chain rule, Linear's backward pass, softmax + cross-entropy, and a
scalar autograd engine.

In the lesson (each used by the cells after it): ``ch2.sigmoid_output_delta``, ``ch2.linear_backward``,
``ch2.softmax_ce_grad`` (the spiral MLP trains with these two), ``ch2.value_ops`` and ``ch2.value_backward`` (the
learner's ``Value`` class, tested through :mod:`.engine`'s probes), ``ch2.mlp`` and ``ch2.train_step`` (a network
of Values and its training step, tested through :mod:`.micro_mlp`'s probes; the capstone trains with them).
For practice at the end: ``ch2.bce``, ``ch2.mse_grad``.
"""

import numpy as np

from ...i18n import N_
from ..checker import exercise
from . import engine, micro_mlp


def _rng():
    return np.random.default_rng(202)


def _delta_cases():
    rng = _rng()
    return [(np.array([0.7]), np.array([1.0])), (rng.uniform(0.05, 0.95, 5), rng.integers(0, 2, 5).astype(float)),
            (np.array([0.5, 0.999]), np.array([0.5, 0.0]))]


@exercise("ch2.sigmoid_output_delta", _delta_cases,
          hints=[N_("Write the chain rule from the loss J down to the pre-activation z: which two derivatives are "
                    "multiplied, and in which order?"),
                 N_("dJ/dz = dJ/da * da/dz. With J = (a - y)^2 the first factor is 2 (a - y); with a = sigma(z) the "
                    "second is sigma'(z), which you can write with a alone."),
                 N_("sigma'(z) = a (1 - a), so dJ/dz = 2 (a - y) a (1 - a).")],
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
          outputs=("dx", "dW", "db"),
          hints=[N_("Each gradient has the shape of what it differentiates: dx like x (N, in), dW like W (out, in), "
                    "db like b (out,). Which products of grad_out (N, out), W and x have those shapes?"),
                 N_("Differentiate Y_nk = sum_i x_ni W_ki + b_k entry by entry: dL/dx_ni sums over k, dL/dW_ki "
                    "sums over the batch n, and so does dL/db_k."),
                 N_("dx = grad_out @ W, dW = grad_out.T @ x, db = grad_out.sum(axis=0).")],
          wrong=lambda x, W, g: (g @ W, x.T @ g, g.sum(axis=0)))
def linear_backward(x, W, grad_out):
    """Gradients (dx, dW, db) of y = x W^T + b: x (N, in), W (out, in), grad_out = dL/dy (N, out)."""
    return grad_out @ W, grad_out.T @ x, grad_out.sum(axis=0)


def _ce_cases():
    rng = _rng()
    return [(rng.standard_normal((4, 3)), np.array([0, 2, 1, 2])), (np.array([[2.0, -1.0]]), np.array([1])),
            # |logits| >= 1000 overflow exp in float64 (exp(710) is inf), and the rows' maxima differ by 1000: only a
            # softmax shifted by each row's own maximum stays finite
            (np.array([[1000.0, 0.0, -1000.0], [0.0, 0.0, 0.0], [-1000.0, -1001.0, -1002.5]]), np.array([2, 0, 1]))]


def _ce_no_mean(logits, labels):
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1
    return p


@exercise("ch2.softmax_ce_grad", _ce_cases,
          hints=[N_("The derivation above ends in a very short formula per sample; the loss is the mean over the N "
                    "samples of the batch."),
                 N_("Per sample, dL/dz = p - y with p = softmax(z) and y the one-hot label; the mean over N samples "
                    "divides every row by N. Use a softmax that does not overflow: case 3 has logits of +-1000, and "
                    "exp(1000) is inf in float64; subtract each row's own maximum."),
                 N_("p = stable softmax of logits; p[np.arange(N), labels] -= 1; return p / N.")],
          wrong=_ce_no_mean)
def softmax_ce_grad(logits, labels):
    """dL/dlogits (N, C) of the mean softmax cross-entropy of logits (N, C) against integer labels (N,)."""
    return _ce_no_mean(logits, labels) / len(labels)


def _op_cases():
    """(op, a, b). The probe sets upstream gradients that are not 1 (a rule that drops ``* out.grad`` shows) and
    inputs whose ``.grad`` already holds a share from other uses (``=`` instead of ``+=`` shows); "square" and
    "double" use a leaf twice in one node, and the ``number`` operations put plain numbers on either side of a Value
    (a missing number -> Value conversion shows)."""
    return [("add", 2.0, -3.0), ("mul", 2.0, -3.0), ("mul", -1.5, 0.25), ("tanh", 0.5, 0.0), ("tanh", -2.0, 0.0),
            ("relu", 1.5, 0.0), ("relu", 0.7, 0.0), ("relu", -0.5, 0.0),
            ("relu", 0.0, 0.0), ("exp", 0.3, 0.0), ("exp", -1.2, 0.0),
            ("log", 1.7, 0.0), ("square", -1.3, 0.0), ("double", 0.9, 0.0), ("sub", 1.2, 3.5), ("neg", 0.8, 0.0),
            ("add_number", 1.2, 2.5), ("number_add", 1.2, 2.5), ("mul_number", 1.2, -4.0),
            ("number_mul", 1.2, -4.0), ("sub_number", 1.2, 2.5), ("number_sub", 1.2, 2.5),
            ("div_number", 1.2, -4.0)]


def _value_ops_no_local_derivative(op, a, b):
    """A typical slip: every _backward passes out.grad through unchanged (forgets the local derivative)."""
    data, _, _ = _value_ops(op, a, b)
    return data, 1.0, (1.0 if op in ("add", "mul") else 0.0)


_value_ops = engine.op_probe(engine.Value)
_value_ops.__wrapped__ = engine.Value  # solution() shows the reference class, not this probe
exercise("ch2.value_ops", _op_cases,
         outputs=("out.data", "x.grad", "y.grad"),
         hints=[N_("Each _backward adds to its inputs' .grad: out.grad (the gradient arriving from above) times the "
                   "local derivative of this one operation."),
                N_("The local derivatives: d(a b)/da = b; tanh'(x) = 1 - tanh(x)^2 (t is already computed); "
                   "ReLU'(x) is 1 for x > 0, else 0 (also at x = 0, as in PyTorch); exp'(x) = exp(x). Use .data, "
                   "the numbers, not the Values, and add (+=): a Value used twice collects both shares."),
                N_("For the product: self.grad += other.data * out.grad and other.grad += self.data * out.grad; "
                   "for tanh self.grad += (1 - t**2) * out.grad.")],
         wrong=_value_ops_no_local_derivative)(_value_ops)


def _graph_cases():
    rng = _rng()
    worked = engine.mlp_2_3_1_inputs([0.35, 0.9], 0.5, [[0.1, 0.8], [0.4, -0.6], [-0.3, 0.5]], [0.1, -0.2, 0.05],
                                     [0.3, -0.9, 0.6], -0.1)
    return [("square", np.array([1.5])), ("sum_of_products", np.array([2.0, -1.0, 0.5])),
            ("shared_node", np.array([0.8, -0.6, 1.3])),
            ("neuron", rng.standard_normal(5)), ("exp_chain", np.array([0.7, -0.4])),
            ("relu_product", np.array([1.5, 3.0])), ("relu_product", np.array([0.0, 3.0])),
            ("numbers", np.array([0.6, -1.4])),
            ("cross_entropy", np.array([0.3, -1.2, 2.0])),
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
         outputs=("output", "gradients"),
         hints=[N_("backward() must call every node's _backward exactly once, and a node only after every node that "
                   "uses it has added its share to that node's .grad."),
                N_("Order the nodes topologically: a depth-first search that appends a node after all of its "
                   "_prev. Then set self.grad = 1 and walk that list from the end."),
                N_("topo, seen = [], set(); def build(v): if v not in seen: seen.add(v); [build(p) for p in v._prev]; "
                   "topo.append(v). Then build(self), self.grad = 1.0, and for v in reversed(topo): v._backward().")],
         wrong=_value_graph_unsorted)(_value_graph)


def _mlp_cases():
    rng = _rng()
    cases = []
    for n_in, n_outs in [(2, (3,)), (2, (4, 3)), (3, (4, 4, 2))]:
        weights = rng.standard_normal(micro_mlp.n_parameters(n_in, n_outs))
        cases.append((n_in, n_outs, weights, rng.standard_normal(n_in), rng.uniform(0.5, 2.0, n_outs[-1])
                      * rng.choice([-1.0, 1.0], n_outs[-1])))
    return cases


class _MLPTanhEverywhere(micro_mlp.MLP):
    """A typical slip: tanh on the output layer too (its outputs are logits: any real number)."""

    def __init__(self, n_in, n_outs):
        super().__init__(n_in, n_outs)
        for layer in self.layers:
            for neuron in layer.neurons:
                neuron.nonlin = True


_mlp = micro_mlp.mlp_probe(micro_mlp.MLP)
_mlp.__wrapped__ = micro_mlp.MLP  # solution() shows the reference MLP (Neuron and Layer: micro_mlp.py)
exercise("ch2.mlp", _mlp_cases,
         outputs=("outputs", "parameter gradients", "input gradients"),
         hints=[N_("A neuron's pre-activation is a weighted sum of its inputs plus its bias; a layer applies each "
                   "of its neurons to the same inputs; the network feeds each layer's outputs to the next layer."),
                N_("Neuron: start the sum at the bias, sum(w_i * x_i for w_i, x_i in zip(self.w, x)) with start value "
                   "self.b, then .tanh() only if self.nonlin. Layer: one output per neuron, in order. parameters(): "
                   "each neuron's w then b, neuron after neuron."),
                N_("Neuron: z = sum((w_i * x_i for w_i, x_i in zip(self.w, x)), self.b); return z.tanh() if "
                   "self.nonlin else z. Layer: [n(x) for n in self.neurons] and [p for n in self.neurons for p in "
                   "n.parameters()]. MLP: x = layer(x).")],
         wrong=micro_mlp.mlp_probe(_MLPTanhEverywhere))(_mlp)


def _train_step_cases():
    rng = _rng()
    cases = []
    for n_in, n_outs, n, lr, num_steps in [(2, (3, 3), 5, 0.5, 2), (2, (4, 3), 7, 1.0, 3)]:
        weights = rng.standard_normal(micro_mlp.n_parameters(n_in, n_outs)) * 0.8
        cases.append((n_in, n_outs, weights, rng.standard_normal((n, n_in)), rng.integers(0, n_outs[-1], n), lr,
                      num_steps))
    # logits about 1000 apart: only a loss shifted by the largest logit stays finite (exp(710) overflows)
    weights = rng.standard_normal(micro_mlp.n_parameters(2, (3, 3)))
    weights[-12:] *= 400.0
    cases.append((2, (3, 3), weights, rng.standard_normal((4, 2)), np.array([0, 1, 2, 0]), 0.001, 2))
    return cases


def _train_step_no_zero_grad(model, X, y, lr):
    """A typical slip: the gradients are never reset, so every step adds the new gradient to all the old ones."""
    loss = sum(micro_mlp.cross_entropy(model(x), label) for x, label in zip(X, y)) / len(X)
    loss.backward()
    for p in model.parameters():
        p.data -= lr * p.grad
    return loss.data


_train_step = micro_mlp.train_step_probe(micro_mlp.train_step)
_train_step.__wrapped__ = micro_mlp.train_step
exercise("ch2.train_step", _train_step_cases,
         outputs=("losses", "parameters after the steps"),
         hints=[N_("Four parts, in this order: reset the gradients, forward pass and loss, backward pass, update. The "
                   "probe runs several steps, so what the previous step left in .grad matters."),
                N_("backward() adds to .grad, so set every parameter's .grad to 0 first. The loss is the mean: the sum "
                   "of cross_entropy(model(x), label) over the batch, divided by N. Gradient descent moves each "
                   "parameter against its gradient."),
                N_("for p in model.parameters(): p.grad = 0.0; loss = sum(cross_entropy(model(x), label) for x, label "
                   "in zip(X, y)) / len(X); loss.backward(); for p in model.parameters(): p.data -= lr * p.grad.")],
         wrong=micro_mlp.train_step_probe(_train_step_no_zero_grad))(_train_step)


# ---- practice at the end of the chapter ----

def _bce_cases():
    rng = _rng()
    return [(np.array([0.9, 0.2]), np.array([1.0, 0.0])),
            (rng.uniform(0.05, 0.95, 6), rng.integers(0, 2, 6).astype(float))]


@exercise("ch2.bce", _bce_cases,
          hints=[N_("The loss must be positive for every sample and grow when p moves away from y; check your formula "
                    "on p = 0.9, y = 0."),
                 N_("One minus sign covers both terms: -[y log p + (1 - y) log(1 - p)], then the mean over samples."),
                 N_("float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p)))).")],
          wrong=lambda p, y: np.mean(-y * np.log(p) + (1 - y) * np.log(1 - p)))
def bce(p, y):
    """Mean binary cross-entropy of probabilities p against labels y in {0, 1}."""
    return float(np.mean(-(y * np.log(p) + (1 - y) * np.log(1 - p))))


def _mse_cases():
    rng = _rng()
    return [(np.array([1.0, 2.0, 3.0]), np.array([1.5, 2.0, 2.0])),
            (rng.standard_normal((4, 2)), rng.standard_normal((4, 2)))]


@exercise("ch2.mse_grad", _mse_cases,
          hints=[N_("Differentiate L = (1/n) sum_i (y_hat_i - y_i)^2 with respect to one y_hat_i; n counts every "
                    "entry."),
                 N_("Mind two things: the sign (the gradient points towards larger loss, i.e. away from y) and the "
                    "1/n."),
                 N_("2 * (y_hat - y) / y_hat.size.")],
          wrong=lambda y_hat, y: 2 * (y - y_hat))
def mse_grad(y_hat, y):
    """dL/dy_hat of the mean squared error over all n entries."""
    return 2 * (y_hat - y) / y_hat.size
