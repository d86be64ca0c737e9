"""Model builders written once, for both libraries: :func:`mlp`, the multilayer perceptron, and :func:`cnn`,
the small image classifier of chapter 7.

``mlp(in_features, hidden_sizes, out_features)`` is Linear -> activation [-> Dropout] for each
hidden size, then a Linear output layer (no activation: logits for a classifier, raw values
for a regressor or a GAN generator). ``library='numpy'`` builds it from ``dlcourse.nn``,
``library='torch'`` from ``torch.nn``: the same layers in the same order, so the two
``state_dict``s have the same keys and shapes and weights move between them. Every MLP in the
package (chapter 2's playground, chapter 3's toy classifier, chapter 6's generator and
discriminator, chapter 7's MNIST models) is built here; so is chapter 7's CNN (:func:`cnn`, the same
``library`` switch).

The dlcourse version draws its weights from the package's generator (``dlcourse.manual_seed``)
layer by layer, weight before bias, exactly as the layers' own constructors do.
"""

from __future__ import annotations

import copy
import inspect

import numpy as np

ACTIVATIONS = ("relu", "leaky_relu", "tanh", "sigmoid", "gelu")
_CLASS_NAMES = {"relu": "ReLU", "leaky_relu": "LeakyReLU", "tanh": "Tanh", "sigmoid": "Sigmoid", "gelu": "GELU"}


def mlp(in_features: int, hidden_sizes, out_features: int, *, activation="relu", negative_slope: float = 0.01,
        dropout: float = 0.0, bias: bool = True, dtype=np.float32, library: str = "numpy"):
    """A ``Sequential`` MLP: (N, in_features) -> (N, out_features).

    ``hidden_sizes``: one or more positive widths, e.g. ``(128,)`` or ``(32, 32)``.
    ``activation``: a name in :data:`ACTIVATIONS` (``negative_slope`` for ``'leaky_relu'``), a
    zero-argument callable returning a module of the chosen library (``nn.Tanh``), or such a module
    itself (``nn.Tanh()``, ``nn.LeakyReLU(0.2)``), copied once per hidden layer.
    Sizes are integers, as ``torch.nn.Linear`` requires (``12.5`` is a TypeError, not width 12).
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


def cnn(channels=(32, 64), hidden_size: int = 128, dropout: float = 0.5, num_classes: int = 10, *,
        in_channels: int = 1, image_size: int = 28, library: str = "numpy"):
    """Two 3x3 convolutions (padding 1) with ReLU and 2x2 max pooling, a dense layer, dropout, logits.

    For MNIST (the defaults): (N, 1, 28, 28) -> conv 32 -> pool -> (N, 32, 14, 14) -> conv 64 -> pool
    -> (N, 64, 7, 7) -> flatten (N, 3136) -> dense 128 -> dropout -> (N, 10) logits. ``image_size`` must be a
    multiple of 4 (two poolings). ``library``: 'numpy' (``dlcourse.nn``) or 'torch' (``torch.nn``), same layers.
    """
    if len(channels) != 2 or min(channels) <= 0 or hidden_size <= 0 or not 0 <= dropout < 1:
        raise ValueError(f"cnn: expected two positive channel counts, a positive hidden_size and 0 <= dropout < 1, "
                         f"got channels={channels}, hidden_size={hidden_size}, dropout={dropout}")
    if image_size <= 0 or image_size % 4:
        raise ValueError(f"cnn: expected an image_size that is a positive multiple of 4, got {image_size}")
    if library not in ("numpy", "torch"):
        raise ValueError(f"cnn: expected library 'numpy' or 'torch', got {library!r}")
    if library == "numpy":
        from dlcourse import nn as lib
    else:
        import torch.nn as lib
    c1, c2 = channels
    flat = c2 * (image_size // 4) ** 2  # 3x3 convolutions with padding 1 keep the size; each pooling halves it
    layers = [lib.Conv2d(in_channels, c1, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2),
              lib.Conv2d(c1, c2, 3, padding=1), lib.ReLU(), lib.MaxPool2d(2),
              lib.Flatten(), lib.Linear(flat, hidden_size), lib.ReLU()]
    if dropout:
        layers.append(lib.Dropout(dropout))
    return lib.Sequential(*layers, lib.Linear(hidden_size, num_classes))


def _is_module(obj) -> bool:
    """A module instance of either library (``nn.Tanh()``), not a class or a factory function."""
    return not inspect.isclass(obj) and hasattr(obj, "forward") and hasattr(obj, "parameters")


def _activation(lib, activation, negative_slope):
    if _is_module(activation):
        return copy.deepcopy(activation)  # one module per layer: a layer's forward cache is its own
    if callable(activation):
        module = activation()
        if not isinstance(module, lib.Module):
            raise TypeError(f"mlp: expected activation() to return a {lib.__name__}.Module, got "
                            f"{type(module).__module__}.{type(module).__name__}")
        return module
    if activation == "leaky_relu":
        return lib.LeakyReLU(negative_slope)
    return getattr(lib, _CLASS_NAMES[activation])()


def _check_int(value, what: str) -> int:
    """An integer size, or torch's TypeError (``torch.nn.Linear(2, 12.5)`` refuses 12.5, as does this)."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"mlp: expected {what} to be an integer, got {type(value).__name__} {value!r}")
    return int(value)


def _check(in_features, hidden_sizes, out_features, activation, dropout, library):
    if library not in ("numpy", "torch"):
        raise ValueError(f"mlp: expected library 'numpy' or 'torch', got {library!r}")
    in_features = _check_int(in_features, "in_features")
    out_features = _check_int(out_features, "out_features")
    if isinstance(hidden_sizes, (int, np.integer, float, np.floating)):
        hidden_sizes = (hidden_sizes,)
    hidden_sizes = tuple(_check_int(h, f"hidden size {k}") for k, h in enumerate(hidden_sizes))
    if not hidden_sizes or min(hidden_sizes) <= 0:
        raise ValueError(f"mlp: expected one or more positive hidden sizes, got {hidden_sizes}")
    if in_features <= 0 or out_features <= 0:
        raise ValueError(f"mlp: expected positive in_features and out_features, got {in_features} and {out_features}")
    if _is_module(activation):
        kind = "torch" if type(activation).__module__.split(".")[0] == "torch" else "numpy"
        if kind != library:
            raise TypeError(f"mlp(library={library!r}): expected an activation module of that library, got "
                            f"{type(activation).__module__}.{type(activation).__name__}")
    elif not (callable(activation) or (isinstance(activation, str) and activation in ACTIVATIONS)):
        raise ValueError(f"mlp: expected an activation in {ACTIVATIONS}, a module or a callable returning a module, "
                         f"got {activation!r}")
    if not 0 <= dropout < 1:
        raise ValueError(f"mlp: expected 0 <= dropout < 1, got {dropout}")
    return hidden_sizes
