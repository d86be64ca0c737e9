"""Model builders written once, for both libraries: :func:`mlp`, the multilayer perceptron.

``mlp(in_features, hidden_sizes, out_features)`` is Linear -> activation [-> Dropout] for each
hidden size, then a Linear output layer (no activation: logits for a classifier, raw values
for a regressor or a GAN generator). ``library='numpy'`` builds it from ``dlcourse.nn``,
``library='torch'`` from ``torch.nn``: the same layers in the same order, so the two
``state_dict``s have the same keys and shapes and weights move between them. Every MLP in the
package (chapter 2's playground, chapter 3's toy classifier, chapter 6's generator and
discriminator, chapter 7's MNIST models) is built here.

The dlcourse version draws its weights from the package's generator (``dlcourse.manual_seed``)
layer by layer, weight before bias, exactly as the layers' own constructors do.
"""

from __future__ import annotations

import numpy as np

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")
_CLASS_NAMES = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU"}


def mlp(in_features: int, hidden_sizes, out_features: int, *, activation="relu", negative_slope: float = 0.01,
        dropout: float = 0.0, bias: bool = True, dtype=np.float32, library: str = "numpy"):
    """A ``Sequential`` MLP: (N, in_features) -> (N, out_features).

    ``hidden_sizes``: one or more positive widths, e.g. ``(128,)`` or ``(32, 32)``.
    ``activation``: a name in :data:`ACTIVATIONS` (``negative_slope`` for ``'leaky_relu'``) or a
    zero-argument callable returning a module of the chosen library (``nn.Tanh``).
    ``dropout`` (0 <= p < 1) adds ``Dropout(p)`` after each hidden activation.
    ``dtype`` (NumPy library: the parameters' dtype; torch: float32 or float64).
    """
    hidden_sizes = _check(in_features, hidden_sizes, out_features, activation, dropout, library)
    if library == "numpy":
        from dlcourse import nn as lib
        linear = lambda i, o: lib.Linear(i, o, bias=bias, dtype=dtype)  # noqa: E731
    else:
        import torch.nn as lib
        linear = lambda i, o: lib.Linear(i, o, bias=bias)  # noqa: E731
    layers, width = [], int(in_features)
    for h in hidden_sizes:
        layers += [linear(width, h), _activation(lib, activation, negative_slope)]
        if dropout:
            layers.append(lib.Dropout(dropout))
        width = h
    model = lib.Sequential(*layers, linear(width, int(out_features)))
    if library == "torch" and np.dtype(dtype) == np.float64:
        model = model.double()
    return model


def _activation(lib, activation, negative_slope):
    if callable(activation):
        return activation()
    if activation == "leaky_relu":
        return lib.LeakyReLU(negative_slope)
    return getattr(lib, _CLASS_NAMES[activation])()


def _check(in_features, hidden_sizes, out_features, activation, dropout, library):
    if library not in ("numpy", "torch"):
        raise ValueError(f"mlp: expected library 'numpy' or 'torch', got {library!r}")
    if isinstance(hidden_sizes, (int, np.integer)):
        hidden_sizes = (hidden_sizes,)
    hidden_sizes = tuple(int(h) for h in hidden_sizes)
    if not hidden_sizes or min(hidden_sizes) <= 0:
        raise ValueError(f"mlp: expected one or more positive hidden sizes, got {hidden_sizes}")
    if int(in_features) <= 0 or int(out_features) <= 0:
        raise ValueError(f"mlp: expected positive in_features and out_features, got {in_features} and {out_features}")
    if not (callable(activation) or activation in ACTIVATIONS):
        raise ValueError(f"mlp: expected an activation in {ACTIVATIONS} or a callable returning a module, "
                         f"got {activation!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"mlp: expected 0 <= dropout < 1, got {dropout}")
    return hidden_sizes
