"""The notebooks' NumPy-vs-PyTorch comparisons with PyTorch on the GPU, in one command (under 8 minutes on one GPU).

    .venv/bin/python benchmarks/gpu_check.py                 # CUDA if there is one, else the CPU path (it says so)
    .venv/bin/python benchmarks/gpu_check.py --device cpu    # the CPU path: the same code, tiny sizes (seconds)
    .venv/bin/python benchmarks/gpu_check.py --out /tmp/gc   # results elsewhere than benchmarks/results/

Three parts, each row of which lands in ``benchmarks/results/gpu_check.json`` and ``gpu_check.md`` (the device
named, with the versions and the CPU):

1. **Agreement.** Every layer and model the chapters compare with its torch twin (Linear, the MLP, the
   activations, the losses, Conv2d, pooling, BatchNorm, LayerNorm, Embedding, RNN/LSTM/GRU, MultiheadAttention,
   the transformer layer, chapter 7's MLP and CNN, one GAN step with Adam): the twin runs on the device, the
   ``dlcourse`` layer on the CPU, from the same weights, on the same input and upstream gradient. Each row is the
   largest relative difference (``max |ours - torch| / max |torch|``) over the output(s), the input gradient(s)
   and every parameter gradient (the GAN step: both losses, every gradient and every updated weight), in float64
   (tolerance 1e-8) and float32 (1e-4). TF32 is switched off for these rows: with it on, an Ampere-or-later GPU
   multiplies float32 in 10-bit mantissas and a float32 convolution differs by ~1e-3 by design. The seconds of one
   forward + backward of each side are in the table too (NumPy on the CPU, torch on the device; median of 3).
2. **Chapter 7's models on the device**: the MLP (784-128-10) and the CNN (conv32-conv64-128-10, dropout 0.5)
   trained with Adam (lr 1e-3, batch 128) on MNIST: test accuracy and seconds per epoch (the training pass).
3. **The MNIST GAN of chapter 6** (the notebook's generator and discriminator, Adam 2e-4, betas (0.5, 0.999)):
   seconds per step, the last losses and D's mean outputs, and how many digit classes 1,000 samples cover
   (a digit classifier trained on the device decides; a class counts with at least 2% of the samples).

MNIST is found as ``dlcourse.data.load_mnist`` finds it (``$DLCOURSE_DATA``; no download here): without it the rows
of parts 2 and 3 are skipped with a note saying so. Only the library is imported (``dlcourse.nn``, ``optim``,
``models``, ``data``, ``runtime``), never the course: chapter 7's MLP and CNN come from ``dlcourse.models`` (``mlp``,
``cnn``), the builders the chapter uses, for both libraries.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

RESULTS = ROOT / "benchmarks" / "results"
TOLERANCE = {"float64": 1e-8, "float32": 1e-4}
DTYPES = {"float64": np.float64, "float32": np.float32}


@dataclass(frozen=True)
class Sizes:
    """How big each part runs: ``full`` on a GPU, ``tiny`` for the CPU path (the same code in seconds)."""

    batch: int
    features: int  # Linear / MLP / activations / losses width
    image: int  # Conv2d / pooling / BatchNorm2d side length
    channels: int
    seq_len: int
    hidden: int  # recurrent hidden size, attention embedding
    heads: int
    train_images: int | None  # None: all 60,000
    test_images: int | None
    epochs: int
    gan_steps: int
    classifier_steps: int
    repeat: int  # timing repeats


SIZES = {
    "full": Sizes(batch=64, features=256, image=28, channels=16, seq_len=28, hidden=128, heads=4,
                  train_images=None, test_images=None, epochs=3, gan_steps=5000, classifier_steps=2000, repeat=3),
    "tiny": Sizes(batch=4, features=8, image=8, channels=3, seq_len=5, hidden=8, heads=2,
                  train_images=256, test_images=256, epochs=1, gan_steps=10, classifier_steps=20, repeat=1),
}


# ---------------------------------------------------------------------------------------------------------------
# Part 1: agreement of each dlcourse layer with its torch twin on the device
# ---------------------------------------------------------------------------------------------------------------


def rel_diff(ours, theirs) -> float:
    """max |ours - theirs| / max(max |theirs|, 1e-30), in float64; shapes must match."""
    a = np.asarray(ours, dtype=np.float64)
    b = theirs.detach().cpu().double().numpy() if hasattr(theirs, "detach") else np.asarray(theirs, np.float64)
    if a.shape != b.shape:
        raise ValueError(f"gpu_check: shapes differ, ours {a.shape}, torch {b.shape}")
    if not a.size:
        return 0.0
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))), 1e-30))


def _randomize(module, seed: int, scale: float = 0.5):
    """Non-zero random weights (some bugs show only with non-zero biases), drawn on the CPU: the same on any device."""
    import torch
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(scale * torch.randn(p.shape, generator=g, dtype=torch.float64).to(p.dtype))
    return module


def _twin(ours, theirs, dtype, device, seed: int):
    """theirs randomized, cast and moved to the device; its weights (and buffers) copied into ours."""
    import torch
    tdt = torch.float64 if dtype == np.float64 else torch.float32
    theirs = _randomize(theirs, seed).to(device=device, dtype=tdt)
    state = {k: v.detach().cpu().numpy() for k, v in theirs.state_dict().items()}
    ours.load_state_dict({k: v.astype(dtype) if v.dtype.kind == "f" else v for k, v in state.items()})
    return ours, theirs


def _flat(out):
    if isinstance(out, (tuple, list)):
        return [x for o in out for x in _flat(o)]
    return [out]


def module_case(ours, theirs, inputs, dtype, device, *, seed=0, kwargs=None, grad_inputs=(0,), n_grads=1,
                backward=None):
    """Forward and backward of both twins; returns ({quantity: relative difference}, step_ours, step_theirs).

    ``inputs``: NumPy arrays (given to ours as they are, to torch as tensors on the device); ``grad_inputs``: the
    positions whose gradient is compared; ``n_grads``: how many of the flattened outputs get an upstream gradient
    (the others, e.g. attention weights, none). ``backward(ours, grads)`` calls ours' backward when it is not
    ``ours.backward(*grads)``.
    """
    import torch
    ours, theirs = _twin(ours, theirs, dtype, device, seed)
    kwargs = kwargs or {}
    rng = np.random.default_rng(seed + 1)

    def t_inputs():
        ts = []
        for i, x in enumerate(inputs):
            t = torch.as_tensor(x, device=device)
            ts.append(t.requires_grad_(True) if i in grad_inputs else t)
        return ts

    def t_kwargs():
        return {k: torch.as_tensor(v, device=device) if isinstance(v, np.ndarray) else v for k, v in kwargs.items()}

    xt = t_inputs()
    outs_t = _flat(theirs(*xt, **t_kwargs()))
    grads = [rng.standard_normal(tuple(o.shape)).astype(dtype) for o in outs_t[:n_grads]]
    torch.autograd.backward(outs_t[:n_grads], [torch.as_tensor(g, device=device) for g in grads])
    ours.zero_grad()
    outs_o = _flat(ours.forward(*inputs, **kwargs))
    dx_o = backward(ours, grads) if backward else ours.backward(*grads)
    dx_o = list(dx_o) if isinstance(dx_o, tuple) else [dx_o]
    diffs = {}
    for k, (o, t) in enumerate(zip(outs_o, outs_t)):
        diffs[f"output[{k}]" if len(outs_t) > 1 else "output"] = rel_diff(o, t)
    for k, i in enumerate(grad_inputs):
        diffs[f"grad input[{i}]" if len(grad_inputs) > 1 else "grad input"] = rel_diff(dx_o[k], xt[i].grad)
    ours_params = dict(ours.named_parameters())
    for name, p in theirs.named_parameters():
        g_o = ours_params[name].grad
        diffs[f"grad {name}"] = rel_diff(np.zeros(tuple(p.shape)) if g_o is None else g_o,
                                         torch.zeros_like(p) if p.grad is None else p.grad)

    def step_ours():
        ours.zero_grad()
        ours.forward(*inputs, **kwargs)
        backward(ours, grads) if backward else ours.backward(*grads)

    tgrads = [torch.as_tensor(g, device=device) for g in grads]

    def step_theirs():
        theirs.zero_grad()
        outs = _flat(theirs(*t_inputs(), **t_kwargs()))
        torch.autograd.backward(outs[:n_grads], tgrads)

    return diffs, step_ours, step_theirs


def loss_case(ours, theirs, pred, target, dtype, device):
    """A loss: the value and dL/dinput."""
    import torch
    pt = torch.as_tensor(pred, device=device).requires_grad_(True)
    tt = torch.as_tensor(target, device=device)
    loss_t = theirs(pt, tt)
    loss_t.backward()
    loss_o = ours.forward(pred, target)
    dx = ours.backward()
    diffs = {"output": rel_diff(np.asarray(loss_o), loss_t), "grad input": rel_diff(dx, pt.grad)}

    def step_ours():
        ours.forward(pred, target)
        ours.backward()

    def step_theirs():
        p = torch.as_tensor(pred, device=device).requires_grad_(True)
        theirs(p, tt).backward()

    return diffs, step_ours, step_theirs


def comparisons(s: Sizes, dtype, device):
    """(chapter, name, thunk) for every comparison; ``thunk()`` returns (diffs, step_ours, step_theirs)."""
    import torch

    from dlcourse import models
    from dlcourse import nn as dnn
    tnn = torch.nn
    rng = np.random.default_rng(0)
    N, F, L, H, E = s.batch, s.features, s.seq_len, s.hidden, s.hidden
    x = rng.standard_normal((N, F)).astype(dtype)
    img = rng.standard_normal((N, s.channels, s.image, s.image)).astype(dtype)
    seq = rng.standard_normal((N, L, F)).astype(dtype)
    emb = rng.standard_normal((N, L, E)).astype(dtype)
    labels = rng.integers(0, 10, N)
    logits = rng.standard_normal((N, 10)).astype(dtype)
    probs = (1 / (1 + np.exp(-logits))).astype(dtype)
    bits = rng.integers(0, 2, (N, 10)).astype(dtype)
    tokens = rng.integers(0, 50, (N, L))
    C = s.channels

    def mod(ours, theirs, inputs, **kw):
        return lambda: module_case(ours, theirs, inputs, dtype, device, **kw)

    def rnn(kind):
        ours = getattr(dnn, kind)(F, H, batch_first=True, dtype=dtype)
        theirs = getattr(tnn, kind)(F, H, batch_first=True)
        n = 3 if kind == "LSTM" else 2  # out, h_n (and c_n)

        def backward(m, grads):
            return m.backward(*grads)
        return mod(ours, theirs, [seq], n_grads=n, backward=backward)

    def classifier(ours, theirs, inputs):
        """dlcourse model + CrossEntropyLoss against torch model + CrossEntropyLoss, eval mode (dropout off)."""
        def thunk():
            loss_o, loss_t = dnn.CrossEntropyLoss(), tnn.CrossEntropyLoss()
            o, t = _twin(ours, theirs, dtype, device, seed=3)
            o.eval(), t.eval()
            xt = torch.as_tensor(inputs, device=device).requires_grad_(True)
            lt = loss_t(t(xt), torch.as_tensor(labels, device=device))
            lt.backward()
            o.zero_grad()
            lo = loss_o.forward(o.forward(inputs), labels)
            dx = o.backward(loss_o.backward())
            diffs = {"loss": rel_diff(np.asarray(lo), lt), "grad input": rel_diff(dx, xt.grad)}
            params = dict(o.named_parameters())
            for name, p in t.named_parameters():
                diffs[f"grad {name}"] = rel_diff(params[name].grad, p.grad)

            def step_ours():
                o.zero_grad()
                loss_o.forward(o.forward(inputs), labels)
                o.backward(loss_o.backward())

            tl = torch.as_tensor(labels, device=device)

            def step_theirs():
                t.zero_grad()
                loss_t(t(torch.as_tensor(inputs, device=device)), tl).backward()
            return diffs, step_ours, step_theirs
        return thunk

    mha_kw = dict(batch_first=True)
    yield "ch1-2", "Linear", mod(dnn.Linear(F, 10, dtype=dtype), tnn.Linear(F, 10), [x])
    yield "ch2", "MLP (dlcourse.models.mlp, tanh)", mod(
        models.mlp(F, (F, F), 10, activation="tanh", dtype=dtype), models.mlp(F, (F, F), 10, activation="tanh",
                                                                             library="torch"), [x])
    for name, ours, theirs in (("ReLU", dnn.ReLU(), tnn.ReLU()), ("Sigmoid", dnn.Sigmoid(), tnn.Sigmoid()),
                               ("Tanh", dnn.Tanh(), tnn.Tanh()), ("LeakyReLU(0.2)", dnn.LeakyReLU(0.2),
                                                                  tnn.LeakyReLU(0.2)),
                               ("GELU", dnn.GELU(), tnn.GELU()), ("Softmax(dim=1)", dnn.Softmax(dim=1),
                                                                  tnn.Softmax(dim=1))):
        yield "ch1-2", name, mod(ours, theirs, [x])
    yield "ch2", "MSELoss", lambda: loss_case(dnn.MSELoss(), tnn.MSELoss(), logits, probs, dtype, device)
    yield "ch1-2", "CrossEntropyLoss", lambda: loss_case(dnn.CrossEntropyLoss(), tnn.CrossEntropyLoss(), logits,
                                                         labels, dtype, device)
    yield "ch1", "BCEWithLogitsLoss", lambda: loss_case(dnn.BCEWithLogitsLoss(), tnn.BCEWithLogitsLoss(), logits,
                                                        bits, dtype, device)
    yield "ch2", "BCELoss", lambda: loss_case(dnn.BCELoss(), tnn.BCELoss(), probs, bits, dtype, device)
    yield "ch4", "Conv2d(3x3, stride 1, pad 1)", mod(dnn.Conv2d(C, 2 * C, 3, padding=1, dtype=dtype),
                                                     tnn.Conv2d(C, 2 * C, 3, padding=1), [img])
    yield "ch4", "Conv2d(5x5, stride 2, pad 2)", mod(dnn.Conv2d(C, 2 * C, 5, stride=2, padding=2, dtype=dtype),
                                                     tnn.Conv2d(C, 2 * C, 5, stride=2, padding=2), [img])
    yield "ch4", "MaxPool2d(2)", mod(dnn.MaxPool2d(2), tnn.MaxPool2d(2), [img])
    yield "ch4", "AvgPool2d(2)", mod(dnn.AvgPool2d(2), tnn.AvgPool2d(2), [img])
    yield "ch4", "BatchNorm2d (train)", mod(dnn.BatchNorm2d(C, dtype=dtype), tnn.BatchNorm2d(C), [img])
    yield "ch4", "BatchNorm1d (train)", mod(dnn.BatchNorm1d(F, dtype=dtype), tnn.BatchNorm1d(F), [x])
    for kind in ("RNN", "LSTM", "GRU"):
        yield "ch5", f"{kind}({F}, {H})", rnn(kind)
    yield "ch8", "LayerNorm", mod(dnn.LayerNorm(E, dtype=dtype), tnn.LayerNorm(E), [emb])
    yield "ch8", "Embedding", mod(dnn.Embedding(50, E, dtype=dtype), tnn.Embedding(50, E), [tokens], grad_inputs=())
    yield "ch8", f"MultiheadAttention({E}, {s.heads})", mod(
        dnn.MultiheadAttention(E, s.heads, dtype=dtype, **mha_kw), tnn.MultiheadAttention(E, s.heads, **mha_kw),
        [emb, emb[::-1].copy(), np.roll(emb, 1, axis=1)], grad_inputs=(0, 1, 2), n_grads=1,
        backward=lambda m, grads: m.backward(grads[0]))
    causal = np.triu(np.ones((L, L), dtype=bool), 1)
    yield "ch8", "TransformerEncoderLayer (causal)", mod(
        dnn.TransformerEncoderLayer(E, s.heads, dim_feedforward=2 * E, dropout=0.0, batch_first=True, dtype=dtype),
        tnn.TransformerEncoderLayer(E, s.heads, dim_feedforward=2 * E, dropout=0.0, batch_first=True),
        [emb], kwargs={"src_mask": causal})
    pixels = rng.standard_normal((N, 1, s.image, s.image)).astype(dtype)
    yield "ch7", "chapter 7's MLP + CrossEntropyLoss", classifier(
        models.mlp(s.image ** 2, (H,), 10, dtype=dtype), models.mlp(s.image ** 2, (H,), 10, library="torch"),
        pixels.reshape(N, -1))
    ch = (32, 64) if s.image == 28 else (4, 8)
    yield "ch7", f"chapter 7's CNN (conv{ch[0]}-conv{ch[1]}) + CrossEntropyLoss", classifier(
        _cast(models.cnn(ch, H, image_size=s.image), dtype), models.cnn(ch, H, image_size=s.image, library="torch"),
        pixels)
    yield "ch6", "GAN step (D and G, Adam)", lambda: gan_step_case(s, dtype, device)


def _cast(model, dtype):
    """A dlcourse model's parameters in ``dtype`` (its layers were built in float32)."""
    for p in model.parameters():
        p.data = p.data.astype(dtype)
    return model


def torch_gan_step(G, D, opt_G, opt_D, bce, real, z_D, z_G, on_D_grads=None):
    """One GAN step in PyTorch, as chapter 6 writes it: D on real and detached fakes, then G through a frozen D.

    ``on_D_grads()`` is called between D's backward and its optimizer step. Returns D's logits on the real and the
    fake batch, and the two losses.
    """
    import torch
    opt_D.zero_grad()
    logits_real, logits_fake = D(real), D(G(z_D).detach())
    loss_D = bce(logits_real, torch.ones_like(logits_real)) + bce(logits_fake, torch.zeros_like(logits_fake))
    loss_D.backward()
    if on_D_grads is not None:
        on_D_grads()
    opt_D.step()
    opt_G.zero_grad()
    D.requires_grad_(False)
    logits_G = D(G(z_G))
    loss_G = bce(logits_G, torch.ones_like(logits_G))
    loss_G.backward()
    D.requires_grad_(True)
    opt_G.step()
    return logits_real, logits_fake, loss_D, loss_G


def gan_step_case(s: Sizes, dtype, device):
    """One discriminator step and one generator step (non-saturating loss) with Adam, both libraries, same start."""
    import torch

    from dlcourse import models, optim
    from dlcourse import nn as dnn
    latent, width, hidden = 2, 2, max(s.hidden // 4, 8)
    G_o = models.mlp(latent, (hidden, hidden), width, activation="relu", dtype=dtype)
    D_o = models.mlp(width, (hidden, hidden), 1, activation="leaky_relu", negative_slope=0.2, dtype=dtype)
    G_t = models.mlp(latent, (hidden, hidden), width, activation="relu", library="torch")
    D_t = models.mlp(width, (hidden, hidden), 1, activation="leaky_relu", negative_slope=0.2, library="torch")
    G_o, G_t = _twin(G_o, G_t, dtype, device, seed=5)
    D_o, D_t = _twin(D_o, D_t, dtype, device, seed=6)
    rng = np.random.default_rng(0)
    n = 4 * s.batch
    real, z_D, z_G = (rng.standard_normal((n, 2)).astype(dtype) for _ in range(3))
    adam = dict(lr=1e-3, betas=(0.5, 0.999))

    # ours
    opt_Go, opt_Do, bce = optim.Adam(G_o.parameters(), **adam), optim.Adam(D_o.parameters(), **adam), \
        dnn.BCEWithLogitsLoss()
    opt_Do.zero_grad()
    fake = G_o.forward(z_D)
    loss_real = bce.forward(D_o.forward(real), np.ones((n, 1), dtype))
    D_o.backward(bce.backward())
    loss_fake = bce.forward(D_o.forward(fake), np.zeros((n, 1), dtype))
    D_o.backward(bce.backward())
    D_grads = {k: p.grad.copy() for k, p in D_o.named_parameters()}
    opt_Do.step()
    opt_Go.zero_grad()
    loss_G = bce.forward(D_o.forward(G_o.forward(z_G)), np.ones((n, 1), dtype))
    G_o.backward(D_o.backward(bce.backward()))
    opt_Go.step()
    ours_loss = {"loss_D": loss_real + loss_fake, "loss_G": loss_G}

    # theirs, on the device
    tb = torch.nn.BCEWithLogitsLoss()
    opt_Gt, opt_Dt = torch.optim.Adam(G_t.parameters(), **adam), torch.optim.Adam(D_t.parameters(), **adam)
    rt, zDt, zGt = (torch.as_tensor(a, device=device) for a in (real, z_D, z_G))
    D_grads_t = {}
    _, _, lD, lG = torch_gan_step(G_t, D_t, opt_Gt, opt_Dt, tb, rt, zDt, zGt, on_D_grads=lambda: D_grads_t.update(
        {k: p.grad.clone() for k, p in D_t.named_parameters()}))
    diffs = {"loss_D": rel_diff(np.asarray(ours_loss["loss_D"]), lD), "loss_G": rel_diff(np.asarray(loss_G), lG)}
    for k in D_grads:
        diffs[f"D grad {k}"] = rel_diff(D_grads[k], D_grads_t[k])
    for label, o, t in (("D", D_o, D_t), ("G", G_o, G_t)):
        tp = dict(t.named_parameters())
        for k, p in o.named_parameters():
            if label == "G":
                diffs[f"G grad {k}"] = rel_diff(p.grad, tp[k].grad)
            diffs[f"{label} new {k}"] = rel_diff(p.data, tp[k])

    def step_ours():
        opt_Do.zero_grad()
        f = G_o.forward(z_D)
        bce.forward(D_o.forward(real), np.ones((n, 1), dtype))
        D_o.backward(bce.backward())
        bce.forward(D_o.forward(f), np.zeros((n, 1), dtype))
        D_o.backward(bce.backward())
        opt_Do.step()
        opt_Go.zero_grad()
        bce.forward(D_o.forward(G_o.forward(z_G)), np.ones((n, 1), dtype))
        G_o.backward(D_o.backward(bce.backward()))
        opt_Go.step()

    def step_theirs():
        opt_Dt.zero_grad()
        a, b = D_t(rt), D_t(G_t(zDt).detach())
        (tb(a, torch.ones_like(a)) + tb(b, torch.zeros_like(b))).backward()
        opt_Dt.step()
        opt_Gt.zero_grad()
        D_t.requires_grad_(False)
        c = D_t(G_t(zGt))
        tb(c, torch.ones_like(c)).backward()
        D_t.requires_grad_(True)
        opt_Gt.step()

    return diffs, step_ours, step_theirs


def _median_seconds(step, repeat: int, device: str) -> float:
    from dlcourse.runtime import timeit
    return timeit(step, repeat=repeat, warmup=1, device=device)


def run_agreement(s: Sizes, device: str, log) -> list[dict]:
    import torch
    torch.backends.cuda.matmul.allow_tf32 = False  # see the module docstring: float32 is float32 here
    torch.backends.cudnn.allow_tf32 = False
    rows = []
    for dname, dtype in DTYPES.items():
        for chapter, name, thunk in comparisons(s, dtype, device):
            t0 = time.perf_counter()
            diffs, step_ours, step_theirs = thunk()
            worst = max(diffs, key=diffs.get)
            row = {"chapter": chapter, "comparison": name, "dtype": dname, "max_rel_diff": diffs[worst],
                   "worst_quantity": worst, "quantities": len(diffs), "tolerance": TOLERANCE[dname],
                   "ok": bool(diffs[worst] <= TOLERANCE[dname])}
            if dname == "float32":  # the speed of the two sides, in the dtype models train in
                row["numpy_cpu_s"] = _median_seconds(step_ours, s.repeat, "cpu")
                row["torch_device_s"] = _median_seconds(step_theirs, s.repeat, device)
            rows.append(row)
            log(f"{dname} {name}: max relative difference {diffs[worst]:.2e} ({worst}, {len(diffs)} quantities) "
                f"{'ok' if row['ok'] else 'OVER ' + str(TOLERANCE[dname])} [{time.perf_counter() - t0:.1f} s]")
    return rows


# ---------------------------------------------------------------------------------------------------------------
# Parts 2 and 3: chapter 7's models and chapter 6's MNIST GAN, trained on the device
# ---------------------------------------------------------------------------------------------------------------


def load_mnist_or_none(log):
    from dlcourse.data import load_mnist
    from dlcourse.data.mnist import MNISTNotFoundError
    try:
        return load_mnist(download=False, progress=False)
    except MNISTNotFoundError as err:
        log(f"MNIST not found, so the training rows are skipped: {str(err).splitlines()[0]}")
        return None


def _subset(arrays, n):
    return arrays if n is None else tuple(a[:n] for a in arrays)


def train_classifiers(s: Sizes, device: str, mnist, log) -> list[dict]:
    """Chapter 7's MLP and CNN in torch on the device: Adam 1e-3, batch 128; test accuracy, seconds per epoch."""
    import torch

    from dlcourse import models
    from dlcourse.data.transforms import preprocess
    (x_tr, y_tr), (x_te, y_te) = _subset(mnist[0], s.train_images), _subset(mnist[1], s.test_images)
    rows = []
    for name, build, flatten in (("MLP 784-128-10", lambda: models.mlp(784, (128,), 10, library="torch"), True),
                                 ("CNN conv32-conv64-128-10", lambda: models.cnn(library="torch"), False)):
        torch.manual_seed(0)
        model = build().to(device)
        opt = torch.optim.Adam(model.parameters(), lr=1e-3)
        xtr = torch.as_tensor(preprocess(x_tr, flatten=flatten), device=device)
        ytr = torch.as_tensor(y_tr, device=device)
        xte = torch.as_tensor(preprocess(x_te, flatten=flatten), device=device)
        gen = torch.Generator(device="cpu").manual_seed(0)
        epoch_s = []
        for _ in range(s.epochs):
            model.train()
            order = torch.randperm(len(xtr), generator=gen).to(device)
            _sync(device)
            t0 = time.perf_counter()
            for i in range(0, len(xtr), 128):
                idx = order[i:i + 128]
                loss = torch.nn.functional.cross_entropy(model(xtr[idx]), ytr[idx])
                opt.zero_grad()
                loss.backward()
                opt.step()
            _sync(device)
            epoch_s.append(time.perf_counter() - t0)
        model.eval()
        with torch.no_grad():
            pred = torch.cat([model(xte[i:i + 1000]).argmax(1) for i in range(0, len(xte), 1000)]).cpu().numpy()
        acc = float((pred == y_te).mean())
        rows.append({"model": name, "epochs": s.epochs, "train_images": len(x_tr), "test_images": len(x_te),
                     "test_accuracy": acc, "seconds_per_epoch": statistics.median(epoch_s),
                     "final_loss": float(loss.item())})
        log(f"{name}: test accuracy {acc:.4f} after {s.epochs} epoch(s), {statistics.median(epoch_s):.2f} s/epoch")
    return rows


def _sync(device):
    import torch
    if device == "cuda":
        torch.cuda.synchronize()


def train_mnist_gan(s: Sizes, device: str, mnist, log) -> dict:
    """Chapter 6's MNIST GAN (the notebook's networks and optimizer) on the device, and what its samples cover."""
    import torch
    tnn = torch.nn
    latent, batch = 64, 128
    (x_tr, y_tr), _ = _subset(mnist[0], s.train_images), None
    data = torch.as_tensor(x_tr.reshape(len(x_tr), -1), device=device).float() / 127.5 - 1
    torch.manual_seed(0)
    G = tnn.Sequential(tnn.Linear(latent, 256), tnn.LeakyReLU(0.2), tnn.Linear(256, 512), tnn.LeakyReLU(0.2),
                       tnn.Linear(512, 784), tnn.Tanh()).to(device)
    D = tnn.Sequential(tnn.Linear(784, 512), tnn.LeakyReLU(0.2), tnn.Linear(512, 256), tnn.LeakyReLU(0.2),
                       tnn.Linear(256, 1)).to(device)
    opt_G = torch.optim.Adam(G.parameters(), lr=2e-4, betas=(0.5, 0.999))
    opt_D = torch.optim.Adam(D.parameters(), lr=2e-4, betas=(0.5, 0.999))
    bce = tnn.BCEWithLogitsLoss()
    gen = torch.Generator(device=device).manual_seed(0)
    tail = max(1, s.gan_steps // 10)
    sums = {"loss_D": 0.0, "loss_G": 0.0, "D_real": 0.0, "D_fake": 0.0}
    _sync(device)
    t0 = time.perf_counter()
    for step in range(s.gan_steps):
        real = data[torch.randint(len(data), (batch,), device=device, generator=gen)]
        z_D = torch.randn(batch, latent, device=device, generator=gen)
        z_G = torch.randn(batch, latent, device=device, generator=gen)
        lr_, lf_, loss_D, loss_G = torch_gan_step(G, D, opt_G, opt_D, bce, real, z_D, z_G)
        if step >= s.gan_steps - tail:  # the means of the last tenth of the run
            sums["loss_D"] += loss_D.detach()
            sums["loss_G"] += loss_G.detach()
            sums["D_real"] += torch.sigmoid(lr_).mean().detach()
            sums["D_fake"] += torch.sigmoid(lf_).mean().detach()
    _sync(device)
    seconds = time.perf_counter() - t0
    last = {k: float(v) / tail for k, v in sums.items()}
    finite = all(math.isfinite(v) for v in last.values())

    # a digit classifier on the device decides which class each sample looks like
    torch.manual_seed(0)
    clf = tnn.Sequential(tnn.Linear(784, 256), tnn.ReLU(), tnn.Linear(256, 10)).to(device)
    opt = torch.optim.Adam(clf.parameters(), lr=1e-3)
    target = torch.as_tensor(y_tr, device=device)
    for _ in range(s.classifier_steps):
        idx = torch.randint(len(data), (128,), device=device, generator=gen)
        loss = torch.nn.functional.cross_entropy(clf(data[idx]), target[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    (x_te, y_te) = _subset(mnist[1], s.test_images)
    with torch.no_grad():
        te = torch.as_tensor(x_te.reshape(len(x_te), -1), device=device).float() / 127.5 - 1
        clf_acc = float((clf(te).argmax(1).cpu().numpy() == y_te).mean())
        z = torch.randn(1000, latent, generator=torch.Generator().manual_seed(1)).to(device)
        counts = np.bincount(clf(G(z)).argmax(1).cpu().numpy(), minlength=10)
    covered = int((counts >= 20).sum())
    row = {"steps": s.gan_steps, "batch": batch, "train_images": len(x_tr), "seconds": seconds,
           "ms_per_step": 1e3 * seconds / s.gan_steps, "last_tenth_means": last, "finite": finite,
           "classifier_test_accuracy": clf_acc, "digit_classes_covered": covered,
           "class_counts_of_1000_samples": counts.tolist()}
    log(f"MNIST GAN: {s.gan_steps} steps in {seconds:.1f} s ({row['ms_per_step']:.2f} ms/step), last tenth: "
        + ", ".join(f"{k} {v:.3f}" for k, v in last.items()) + f"; {covered}/10 digit classes covered "
        f"(classifier test accuracy {clf_acc:.3f})")
    return row


# ---------------------------------------------------------------------------------------------------------------
# Running and reporting
# ---------------------------------------------------------------------------------------------------------------


def environment(device: str) -> dict:
    import torch

    from dlcourse.runtime import cpu_model, device_name
    return {"device": device, "device_name": device_name(device), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "python": platform.python_version(), "numpy": np.__version__, "torch": torch.__version__,
            "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime())}


def markdown(result: dict) -> str:
    env = result["environment"]
    lines = [f"# gpu_check: dlcourse (NumPy, CPU) against PyTorch on {env['device_name']} ({env['device']})", ""]
    if result.get("note"):
        lines += [f"**Note:** {result['note']}", ""]
    lines += [f"Sizes: {result['sizes_name']}. CPU: {env['cpu']} ({env['cpu_count']} cores). Python {env['python']}, "
              f"NumPy {env['numpy']}, PyTorch {env['torch']} (CUDA {env['cuda']}). {env['date']}.", "",
              "## Agreement (largest relative difference over outputs, input and parameter gradients)", "",
              "| chapter | comparison | float64 | float32 | worst quantity (float32) | NumPy CPU s | torch "
              f"{env['device']} s | ok |", "|---|---|---|---|---|---|---|---|"]
    by_name: dict = {}
    for row in result["agreement"]:
        by_name.setdefault(row["comparison"], {})[row["dtype"]] = row
    for name, rows in by_name.items():
        r64, r32 = rows["float64"], rows["float32"]
        ok = "✓" if r64["ok"] and r32["ok"] else "✗"
        lines.append(f"| {r64['chapter']} | {name} | {r64['max_rel_diff']:.1e} | {r32['max_rel_diff']:.1e} | "
                     f"{r32['worst_quantity']} | {r32['numpy_cpu_s']:.2e} | {r32['torch_device_s']:.2e} | {ok} |")
    lines += ["", f"Tolerances: float64 {TOLERANCE['float64']:g}, float32 {TOLERANCE['float32']:g} (TF32 off).", ""]
    lines += ["## Chapter 7's models, PyTorch on the device (Adam 1e-3, batch 128)", ""]
    if result["training"] is None:
        lines += [f"Skipped: {result['mnist_note']}", ""]
    else:
        lines += ["| model | epochs | training images | test accuracy | seconds / epoch |", "|---|---|---|---|---|"]
        for r in result["training"]:
            lines.append(f"| {r['model']} | {r['epochs']} | {r['train_images']} | {r['test_accuracy']:.4f} | "
                         f"{r['seconds_per_epoch']:.2f} |")
        lines.append("")
    lines += ["## Chapter 6's MNIST GAN on the device", ""]
    g = result["gan"]
    if g is None:
        lines += [f"Skipped: {result['mnist_note']}", ""]
    else:
        m = g["last_tenth_means"]
        lines += ["| steps | ms / step | loss_D | loss_G | D(x) | D(G(z)) | digit classes covered | classifier acc |",
                  "|---|---|---|---|---|---|---|---|",
                  f"| {g['steps']} | {g['ms_per_step']:.2f} | {m['loss_D']:.3f} | {m['loss_G']:.3f} | "
                  f"{m['D_real']:.3f} | {m['D_fake']:.3f} | {g['digit_classes_covered']}/10 | "
                  f"{g['classifier_test_accuracy']:.3f} |", "",
                  "Losses and D's outputs: means over the last tenth of the steps. A class is covered when the "
                  "classifier puts at least 20 of 1,000 samples in it.", ""]
    lines.append(f"Total: {result['total_seconds']:.1f} s.")
    return "\n".join(lines) + "\n"


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=["auto", "cuda", "cpu"], default="auto",
                        help="auto: CUDA when there is one, else the CPU path (tiny sizes)")
    parser.add_argument("--sizes", choices=sorted(SIZES), default=None,
                        help="full (default on CUDA) or tiny (default on the CPU)")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for gpu_check.json and gpu_check.md")
    parser.add_argument("--quiet", action="store_true")
    args = parser.parse_args(argv)
    log = (lambda msg: None) if args.quiet else (lambda msg: print(f"gpu_check: {msg}", flush=True))
    import torch
    note = None
    device = args.device
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
        if device == "cpu":
            note = "CUDA is not available here, so this is the CPU path: the same code with tiny sizes."
    elif device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("gpu_check: --device cuda, but torch sees no CUDA device (torch.cuda.is_available() is "
                         "False); run without --device for the CPU path")
    elif device == "cpu":
        note = "--device cpu: the CPU path, the same code with tiny sizes."
    sizes_name = args.sizes or ("full" if device == "cuda" else "tiny")
    s = SIZES[sizes_name]
    if note:
        log(note)
    t0 = time.perf_counter()
    env = environment(device)
    log(f"device: {env['device_name']} ({device}), sizes: {sizes_name}")
    result = {"environment": env, "note": note, "sizes_name": sizes_name, "sizes": s.__dict__,
              "agreement": run_agreement(s, device, log)}
    mnist = load_mnist_or_none(log)
    result["mnist_note"] = None if mnist else "MNIST not found (set DLCOURSE_DATA to the folder above mnist/)."
    result["training"] = train_classifiers(s, device, mnist, log) if mnist else None
    result["gan"] = train_mnist_gan(s, device, mnist, log) if mnist else None
    result["all_agree"] = all(r["ok"] for r in result["agreement"])
    result["total_seconds"] = time.perf_counter() - t0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in (("gpu_check.json", json.dumps(result, indent=2)), ("gpu_check.md", markdown(result))):
        tmp = args.out / (name + ".tmp")
        tmp.write_text(text, encoding="utf-8")
        tmp.replace(args.out / name)
    log(f"{'every comparison agrees' if result['all_agree'] else 'SOME COMPARISONS DISAGREE'}; "
        f"{result['total_seconds']:.1f} s; wrote {args.out / 'gpu_check.json'} and gpu_check.md")
    return result


if __name__ == "__main__":
    sys.exit(0 if main()["all_agree"] else 1)
