"""benchmarks/gpu_check.py's CPU path: every comparison present and within tolerance, the JSON and markdown complete.

On a machine without CUDA the script falls back to the CPU path (tiny sizes) and says so; the same code then runs
on a GPU with the full sizes. A comparison that could not fail would be a defect: with one weight nudged in the
dlcourse twin, every comparison of a layer with parameters must report a difference over its tolerance.
"""

from __future__ import annotations

import importlib.util
import json
import re
import sys

import numpy as np
import pytest
import repo_paths
import torch

ROOT = repo_paths.ROOT


def _load():
    spec = importlib.util.spec_from_file_location("gpu_check", ROOT / "benchmarks" / "gpu_check.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["gpu_check"] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


gc = _load()
NAMES = [name for _, name, _ in gc.comparisons(gc.SIZES["tiny"], np.float64, "cpu")]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    out = tmp_path_factory.mktemp("gpu_check")
    # no CUDA here: the automatic fallback is what a user without a GPU gets; with CUDA, ask for the CPU path
    device = "cpu" if torch.cuda.is_available() else "auto"
    result = gc.main(["--device", device, "--out", str(out), "--quiet"])
    return result, json.loads((out / "gpu_check.json").read_text()), (out / "gpu_check.md").read_text()


def test_the_cpu_path_says_it_is_the_cpu_path(run):
    result, saved, md = run
    assert saved["environment"]["device"] == "cpu" and saved["sizes_name"] == "tiny"
    if not torch.cuda.is_available():
        assert "CUDA is not available" in saved["note"] and "CUDA is not available" in md
    assert saved["environment"]["device_name"] in md


def test_every_comparison_is_present_in_both_dtypes_and_agrees(run):
    _, saved, md = run
    assert len(NAMES) >= 25 and len(set(NAMES)) == len(NAMES)
    for layer in ("Linear", "Conv2d", "MaxPool2d", "BatchNorm2d", "LSTM", "GRU", "RNN", "MultiheadAttention",
                  "TransformerEncoderLayer", "CrossEntropyLoss", "GAN step", "CNN"):
        assert any(layer in name for name in NAMES), layer
    rows = {(r["comparison"], r["dtype"]): r for r in saved["agreement"]}
    assert set(rows) == {(name, dtype) for name in NAMES for dtype in ("float64", "float32")}
    for (name, dtype), row in rows.items():
        assert row["ok"] and 0 <= row["max_rel_diff"] <= gc.TOLERANCE[dtype], (name, dtype, row)
        assert row["quantities"] >= 2  # at least the output and one gradient
    assert saved["all_agree"] is True
    table = [line for line in md.splitlines() if re.match(r"\| ch\d", line)]
    assert len(table) == len(NAMES) and all(line.rstrip().endswith("✓ |") for line in table)
    for name in NAMES:
        assert f"| {name} |" in md


def test_the_mnist_rows_or_a_note_saying_they_were_skipped(run):
    _, saved, md = run
    if saved["training"] is None:
        assert saved["gan"] is None and "MNIST not found" in saved["mnist_note"] and "Skipped: MNIST" in md
        return
    assert [r["model"] for r in saved["training"]] == ["MLP 784-128-10", "CNN conv32-conv64-128-10"]
    for r in saved["training"]:
        assert 0.0 <= r["test_accuracy"] <= 1.0 and r["seconds_per_epoch"] > 0 and np.isfinite(r["final_loss"])
        assert f"| {r['model']} |" in md
    gan = saved["gan"]
    assert gan["finite"] and gan["steps"] == gc.SIZES["tiny"].gan_steps
    assert sum(gan["class_counts_of_1000_samples"]) == 1000
    assert "MNIST GAN" in md


def test_a_wrong_weight_in_the_dlcourse_twin_is_caught(monkeypatch):
    twin = gc._twin

    def nudged(ours, theirs, dtype, device, seed):
        ours, theirs = twin(ours, theirs, dtype, device, seed)
        first = next(iter(ours.parameters()), None)
        if first is not None:
            first.data += 1e-3  # every entry: an Embedding row the tokens do not use would hide one entry
        return ours, theirs

    monkeypatch.setattr(gc, "_twin", nudged)
    caught = 0
    for _, name, thunk in gc.comparisons(gc.SIZES["tiny"], np.float64, "cpu"):
        if any(w in name for w in ("ReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "Loss", "Pool")) \
                and "+" not in name:
            continue  # no parameters to nudge
        diffs = thunk()[0]
        assert max(diffs.values()) > gc.TOLERANCE["float64"], name
        caught += 1
    assert caught >= 14
