"""dlcourse.nn.utils.clip_grad_norm_ / clip_grad_value_ against torch.nn.utils."""

from __future__ import annotations

import math

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlcourse import nn  # noqa: E402
from dlcourse.nn import Parameter  # noqa: E402
from dlcourse.nn.utils import clip_grad_norm_, clip_grad_value_  # noqa: E402


def twins(scale, dtype=np.float64, seed=0):
    rng = np.random.default_rng(seed)
    shapes = [(4, 3), (3,), (2, 2, 5)]
    grads = [rng.standard_normal(s).astype(dtype) * scale for s in shapes]
    ps = [Parameter(np.zeros(s, dtype=dtype)) for s in shapes]
    ts = [torch.zeros(s, dtype=torch.float64 if dtype == np.float64 else torch.float32, requires_grad=True)
          for s in shapes]
    for p, t, g in zip(ps, ts, grads):
        p.grad = g.copy()
        t.grad = torch.from_numpy(g.copy())
    return ps, ts


@pytest.mark.parametrize("norm_type", [2.0, 1.0, 3.0, math.inf])
@pytest.mark.parametrize("scale, max_norm", [(10.0, 1.0), (0.01, 1.0), (1.0, 2.5)])
def test_clip_grad_norm_matches_torch(norm_type, scale, max_norm):
    ps, ts = twins(scale)
    total = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    total_t = torch.nn.utils.clip_grad_norm_(ts, max_norm, norm_type=norm_type)
    assert isinstance(total, float)
    assert total == pytest.approx(float(total_t), rel=1e-12)
    for p, t in zip(ps, ts):
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-12, atol=1e-15)
    after = clip_grad_norm_(ps, max_norm, norm_type=norm_type)
    assert after <= max_norm + 1e-6  # clipped: the norm is now at most max_norm


def test_clip_grad_norm_float32_and_none_grads():
    ps, ts = twins(5.0, dtype=np.float32)
    ps.append(Parameter(np.ones(3, dtype=np.float32)))  # no gradient: skipped
    total = clip_grad_norm_(ps, 1.0)
    total_t = torch.nn.utils.clip_grad_norm_(ts, 1.0)
    assert total == pytest.approx(float(total_t), rel=1e-5)
    for p, t in zip(ps, ts):
        assert p.grad.dtype == np.float32
        np.testing.assert_allclose(p.grad, t.grad.numpy(), rtol=1e-5)
    assert ps[-1].grad is None


def test_clip_grad_norm_on_a_model_and_a_single_parameter():
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2)).double()
    x = np.random.default_rng(0).standard_normal((5, 3))
    model.backward(np.ones_like(model(x)) * 100)
    norm = clip_grad_norm_(model.parameters(), 0.5)
    assert norm > 0.5
    assert clip_grad_norm_(model.parameters(), 0.5) == pytest.approx(0.5, rel=1e-5)
    p = Parameter(np.zeros(2))
    p.grad = np.array([3.0, 4.0])
    assert clip_grad_norm_(p, 1.0) == pytest.approx(5.0)
    np.testing.assert_allclose(p.grad, [0.6, 0.8], rtol=1e-6)


def test_clip_grad_norm_nonfinite():
    ps, _ = twins(1.0)
    ps[0].grad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non|NaN|nan"):
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    with pytest.raises(RuntimeError):  # the same error is also a RuntimeError, as torch raises
        clip_grad_norm_(ps, 1.0, error_if_nonfinite=True)
    assert math.isnan(clip_grad_norm_(ps, 1.0))


def test_clip_grad_value_matches_torch():
    ps, ts = twins(3.0)
    clip_grad_value_(ps, 1.5)
    torch.nn.utils.clip_grad_value_(ts, 1.5)
    for p, t in zip(ps, ts):
        np.testing.assert_array_equal(p.grad, t.grad.numpy())


def test_bad_arguments():
    with pytest.raises(ValueError, match=r"clip_grad_norm_: expected Parameters \(e.g. model.parameters\(\)\), "
                                         "got ndarray at position 0"):
        clip_grad_norm_([np.ones(3)], 1.0)
    ps, _ = twins(1.0)
    with pytest.raises(ValueError, match="clip_grad_norm_: expected max_norm >= 0, got -1.0"):
        clip_grad_norm_(ps, -1.0)
    with pytest.raises(ValueError, match=r"clip_grad_norm_: expected norm_type > 0 \(or inf\), got 0"):
        clip_grad_norm_(ps, 1.0, norm_type=0)
