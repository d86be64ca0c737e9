"""The learning-rate playground, driven through its controls without a browser."""

from __future__ import annotations

import numpy as np
import pytest

from dlcourse.course.ch03_optimizers.lr_playground import PLAYGROUND_OPTIMIZERS, LRPlayground, make_playground_optimizer
from dlcourse.course.ch03_optimizers.surfaces import SURFACES


@pytest.fixture(scope="module")
def playground():
    return LRPlayground(num_steps=60)


def line_data(ax):
    return [np.asarray(line.get_xydata()).copy() for line in ax.get_lines()]


def test_controls(playground):
    lr = playground.controls["lr"]
    assert type(lr).__name__ == "FloatLogSlider"
    assert (lr.min, lr.max, lr.base) == (-5, 1, 10)  # exponents: 1e-5 ... 10
    for name, control in playground.controls.items():
        if hasattr(control, "continuous_update"):
            assert control.continuous_update is False, name
    assert set(playground.controls["optimizer"].options) == set(PLAYGROUND_OPTIMIZERS)
    assert "final loss" in playground.readout.value


def test_setting_the_learning_rate_retrains_and_redraws(playground):
    playground.controls["optimizer"].value = "SGD"
    playground.controls["lr"].value = 0.01
    n, readout = playground.n_updates, playground.readout.value
    paths, curves = line_data(playground.axes[0]), line_data(playground.axes[1])
    weights = playground.result["model"].state_dict()
    playground.controls["lr"].value = 0.03
    assert playground.n_updates == n + 1
    assert playground.readout.value != readout and "lr = 0.03" in playground.readout.value
    assert "final loss" in playground.readout.value
    new_paths, new_curves = line_data(playground.axes[0]), line_data(playground.axes[1])
    assert any(a.shape != b.shape or not np.allclose(a, b) for a, b in zip(paths, new_paths)), "trajectory unchanged"
    assert any(a.shape != b.shape or not np.allclose(a, b) for a, b in zip(curves, new_curves)), "loss curve unchanged"
    new_weights = playground.result["model"].state_dict()
    assert any(not np.allclose(weights[k], new_weights[k]) for k in weights), "the MLP was not retrained"


def test_a_divergent_learning_rate_says_so(playground):
    playground.controls["optimizer"].value = "SGD"
    playground.controls["surface"].value = "quadratic"
    playground.controls["lr"].value = 10.0  # far above 2 / 20, the stability bound of the quadratic
    text = playground.readout.value
    assert "diverged at step" in text and "nan" not in text.lower()
    traj = playground.result["trajectory"]
    assert traj.diverged_at is not None and np.all(np.isfinite(traj.path))
    shown = [t.get_text() for ax in playground.axes for t in ax.texts]
    assert any("diverged at step" in t for t in shown), f"no message in the plot: {shown}"
    for ax in playground.axes:
        for line in ax.get_lines():
            assert np.all(np.isfinite(line.get_xydata())), "NaN drawn"
    playground.controls["lr"].value = 0.01  # and it recovers
    assert "diverged" not in playground.readout.value


def test_every_optimizer_and_surface_runs(playground):
    for name in PLAYGROUND_OPTIMIZERS:
        playground.controls["optimizer"].value = name
        assert name in playground.readout.value
        uses = PLAYGROUND_OPTIMIZERS[name][0]
        for slider in ("momentum", "beta1", "beta2"):
            assert playground.controls[slider].disabled == (slider not in uses), (name, slider)
    for surface in ("rosenbrock", "saddle", "plateau", "quadratic"):
        playground.controls["surface"].value = surface
        assert playground.axes[0].get_title().startswith(SURFACES[surface]().name)
    n = playground.n_updates
    playground.controls["beta1"].value = 0.5
    playground.controls["num_steps"].value = 30
    assert playground.n_updates == n + 2
    assert len(playground.result["mlp_run"].step_losses) == 30


def test_sliders_change_the_result(playground):
    playground.controls["optimizer"].value = "SGD"
    playground.controls["lr"].value = 0.02
    playground.controls["momentum"].value = 0.0
    plain = playground.result["trajectory"].final_loss
    playground.controls["momentum"].value = 0.9
    assert playground.result["trajectory"].final_loss != plain


def test_update_is_fast_enough(playground):
    playground.controls["num_steps"].value = 150
    playground.controls["lr"].value = 0.05
    assert playground.seconds_per_update < 5.0  # ~0.15 s on a laptop; generous for a loaded CI machine


def test_make_playground_optimizer_rejects_unknown_names():
    with pytest.raises(ValueError, match="expected one of"):
        make_playground_optimizer("Adamax", [], 0.1)
