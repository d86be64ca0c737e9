"""dlcourse.optim.lr_scheduler against torch.optim.lr_scheduler: the learning rates (and cycled
momenta) of every step, and whole training trajectories with a schedule, in float64."""

from __future__ import annotations

import copy
import math
import warnings

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlcourse import nn, optim  # noqa: E402
from dlcourse.nn import Parameter  # noqa: E402
from dlcourse.optim import lr_scheduler as S  # noqa: E402
from dlcourse.optim.lr_scheduler import ExponentialLR, OneCycleLR  # noqa: E402

TS = torch.optim.lr_scheduler
NUM_STEPS = 400


def two_groups(make_optimizer, lrs=(0.1, 0.03), params=None):
    """An optimizer with two parameter groups of different learning rates."""
    params = params or [np.ones(3), np.ones(2)]
    return make_optimizer([{"params": [params[0]], "lr": lrs[0]}, {"params": [params[1]], "lr": lrs[1]}])


def pair(opt_name="SGD", opt_kwargs=None):
    opt_kwargs = dict(momentum=0.9) if opt_kwargs is None else opt_kwargs
    ours = two_groups(lambda g: getattr(optim, opt_name)(g, **opt_kwargs),
                      params=[Parameter(np.ones(3)), Parameter(np.ones(2))])
    theirs = two_groups(lambda g: getattr(torch.optim, opt_name)(g, **opt_kwargs),
                        params=[torch.ones(3, dtype=torch.float64, requires_grad=True),
                                torch.ones(2, dtype=torch.float64, requires_grad=True)])
    return ours, theirs


SCHEDULERS = {
    "StepLR": lambda m, o: m.StepLR(o, step_size=30, gamma=0.5),
    "MultiStepLR": lambda m, o: m.MultiStepLR(o, milestones=[50, 120, 120, 300], gamma=0.3),
    "ExponentialLR": lambda m, o: m.ExponentialLR(o, gamma=0.99),
    "CosineAnnealingLR": lambda m, o: m.CosineAnnealingLR(o, T_max=100, eta_min=1e-3),
    "CosineAnnealingLR one period": lambda m, o: m.CosineAnnealingLR(o, T_max=NUM_STEPS),
    "LinearLR warm-up": lambda m, o: m.LinearLR(o, start_factor=0.01, total_iters=50),
    "LinearLR decay": lambda m, o: m.LinearLR(o, start_factor=1.0, end_factor=0.05, total_iters=300),
    "ConstantLR": lambda m, o: m.ConstantLR(o, factor=0.25, total_iters=40),
    "PolynomialLR": lambda m, o: m.PolynomialLR(o, total_iters=300, power=2.0),
    "LambdaLR": lambda m, o: m.LambdaLR(o, lr_lambda=lambda e: 1.0 / (1 + 0.05 * e)),
    "LambdaLR per group": lambda m, o: m.LambdaLR(o, lr_lambda=[lambda e: 0.99 ** e, lambda e: 1 + math.sin(e / 9)]),
    "MultiplicativeLR": lambda m, o: m.MultiplicativeLR(o, lr_lambda=lambda e: 0.995),
    "OneCycleLR": lambda m, o: m.OneCycleLR(o, max_lr=[1.0, 0.3], total_steps=NUM_STEPS),
    "OneCycleLR linear three-phase": lambda m, o: m.OneCycleLR(o, max_lr=0.5, epochs=8, steps_per_epoch=50,
                                                               pct_start=0.25, anneal_strategy="linear",
                                                               three_phase=True),
    "CyclicLR triangular": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=40),
    "CyclicLR triangular2": lambda m, o: m.CyclicLR(o, base_lr=[0.01, 0.02], max_lr=0.1, step_size_up=30,
                                                    step_size_down=50, mode="triangular2"),
    "CyclicLR exp_range": lambda m, o: m.CyclicLR(o, base_lr=0.01, max_lr=0.1, step_size_up=25, mode="exp_range",
                                                  gamma=0.995),
    "CosineAnnealingWarmRestarts": lambda m, o: m.CosineAnnealingWarmRestarts(o, T_0=20, T_mult=2, eta_min=1e-4),
    "warm-up then cosine (SequentialLR)": lambda m, o: m.SequentialLR(
        o, [m.LinearLR(o, start_factor=0.1, total_iters=40), m.CosineAnnealingLR(o, T_max=NUM_STEPS - 40)],
        milestones=[40]),
    "ChainedScheduler": lambda m, o: m.ChainedScheduler([m.ConstantLR(o, factor=0.5, total_iters=20),
                                                         m.ExponentialLR(o, gamma=0.99)]),
}


def lrs_and_momenta(opt):
    out = []
    for g in opt.param_groups:
        out.append(float(g["lr"]))
        if "momentum" in g:
            out.append(float(g["momentum"]))
        if "betas" in g:
            out.append(float(g["betas"][0]))
    return np.array(out)


@pytest.mark.parametrize("name", list(SCHEDULERS))
@pytest.mark.parametrize("opt_name", ["SGD", "Adam"])
def test_schedule_matches_torch(name, opt_name):
    ours_opt, torch_opt = pair(opt_name, dict(momentum=0.9) if opt_name == "SGD" else {})
    ours, theirs = SCHEDULERS[name](S, ours_opt), SCHEDULERS[name](TS, torch_opt)
    np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-13, atol=1e-15)
    seen = set()
    for step in range(NUM_STEPS):
        ours_opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
        a, b = lrs_and_momenta(ours_opt), lrs_and_momenta(torch_opt)
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-15, err_msg=f"{name}, step {step}")
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12, atol=1e-15)
        seen.add(round(float(a[0]), 12))
    assert len(seen) >= 2, f"{name}: the learning rate never changed, the test would prove little"


def test_reduce_lr_on_plateau_matches_torch():
    ours_opt, torch_opt = pair()
    kwargs = dict(mode="min", factor=0.5, patience=3, threshold=1e-2, cooldown=2, min_lr=[1e-3, 1e-4])
    ours, theirs = S.ReduceLROnPlateau(ours_opt, **kwargs), TS.ReduceLROnPlateau(torch_opt, **kwargs)
    rng = np.random.default_rng(0)
    metric = 1.0
    changes = 0
    for step in range(200):
        metric = metric * (0.97 if step % 25 < 8 else 1.0) + 0.002 * rng.standard_normal()
        before = ours.get_last_lr()
        ours.step(metric)
        theirs.step(metric)
        assert ours.get_last_lr() == theirs.get_last_lr(), f"step {step}"
        changes += ours.get_last_lr() != before
    assert changes >= 3


def test_max_mode_and_abs_threshold_on_plateau():
    ours_opt, torch_opt = pair()
    ours = S.ReduceLROnPlateau(ours_opt, mode="max", threshold_mode="abs", threshold=0.01, patience=2)
    theirs = TS.ReduceLROnPlateau(torch_opt, mode="max", threshold_mode="abs", threshold=0.01, patience=2)
    for step in range(60):
        acc = min(0.9, 0.5 + 0.02 * step) + 0.001 * (step % 3)
        ours.step(acc)
        theirs.step(acc)
        assert ours.get_last_lr() == theirs.get_last_lr()
    assert ours.get_last_lr()[0] < 0.1


@pytest.mark.parametrize("name", ["StepLR", "MultiStepLR", "ExponentialLR", "CosineAnnealingLR", "LinearLR warm-up",
                                  "PolynomialLR", "ConstantLR"])
def test_closed_form_step_epoch_matches_torch(name):
    ours_opt, torch_opt = pair()
    ours, theirs = SCHEDULERS[name](S, ours_opt), SCHEDULERS[name](TS, torch_opt)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for epoch in [3, 10, 55, 40, 130, 299]:
            ours.step(epoch)
            theirs.step(epoch)
            np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)


@pytest.mark.parametrize("name, opt_name, opt_kwargs", [
    ("OneCycleLR", "SGD", dict(momentum=0.9, nesterov=True)),
    ("OneCycleLR", "Adam", dict(amsgrad=True)),
    ("warm-up then cosine (SequentialLR)", "AdamW", dict(weight_decay=0.05)),
    ("CosineAnnealingWarmRestarts", "RMSprop", dict(momentum=0.5)),
    ("StepLR", "Adagrad", dict()),
])
def test_training_trajectory_with_schedule_matches_torch(name, opt_name, opt_kwargs):
    """The whole point: optimizer + schedule for hundreds of steps give torch's parameters."""
    rng = np.random.default_rng(0)
    init = [rng.standard_normal((4, 3)), rng.standard_normal(5)]
    ps = [Parameter(a.copy()) for a in init]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    ours_opt = two_groups(lambda g: getattr(optim, opt_name)(g, **opt_kwargs), lrs=(0.05, 0.02), params=ps)
    torch_opt = two_groups(lambda g: getattr(torch.optim, opt_name)(g, **opt_kwargs), lrs=(0.05, 0.02), params=ts)
    ours, theirs = SCHEDULERS[name](S, ours_opt), SCHEDULERS[name](TS, torch_opt)
    for step in range(NUM_STEPS):
        for p in ps:
            p.grad = 0.5 * p.data + np.cos(p.data) + np.random.default_rng([step, p.data.size]).standard_normal(
                p.data.shape) * 0.3
        for p in ts:
            a = p.detach().numpy()
            p.grad = torch.from_numpy(0.5 * a + np.cos(a) + np.random.default_rng([step, a.size]).standard_normal(
                a.shape) * 0.3)
        ours_opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
    diff = max(float(np.max(np.abs(p.data - q.detach().numpy()))) for p, q in zip(ps, ts))
    assert diff < 1e-10, f"{name} + {opt_name}: parameters differ from torch's by {diff:.2e}"


@pytest.mark.parametrize("name", ["StepLR", "CosineAnnealingLR", "OneCycleLR", "warm-up then cosine (SequentialLR)",
                                  "CyclicLR triangular2", "CosineAnnealingWarmRestarts", "LambdaLR"])
def test_scheduler_state_dict_round_trip(name):
    opt_a, _ = pair()
    sched_a = SCHEDULERS[name](S, opt_a)
    for _ in range(70):
        opt_a.step()
        sched_a.step()
    saved_sched = copy.deepcopy(sched_a.state_dict())
    saved_opt = copy.deepcopy(opt_a.state_dict())
    opt_b, _ = pair()
    sched_b = SCHEDULERS[name](S, opt_b)
    opt_b.load_state_dict(saved_opt)
    sched_b.load_state_dict(saved_sched)
    for _ in range(100):
        for opt, sched in ((opt_a, sched_a), (opt_b, sched_b)):
            opt.step()
            sched.step()
        assert sched_a.get_last_lr() == sched_b.get_last_lr()


def test_a_hand_set_lr_is_annealed_from_where_it_is():
    """Chainable form: write a new lr into param_groups, and the schedule continues from it, as in torch."""
    ours_opt, torch_opt = pair()
    ours, theirs = S.CosineAnnealingLR(ours_opt, T_max=50), TS.CosineAnnealingLR(torch_opt, T_max=50)
    for step in range(100):
        if step == 20:
            ours_opt.param_groups[0]["lr"] = torch_opt.param_groups[0]["lr"] = 0.5
        ours_opt.step()
        torch_opt.step()
        ours.step()
        theirs.step()
        np.testing.assert_allclose(ours.get_last_lr(), theirs.get_last_lr(), rtol=1e-12)


@pytest.mark.parametrize("make, message", [
    (lambda o: S.StepLR(o, step_size=0), "StepLR: expected step_size > 0, got 0"),
    (lambda o: S.LinearLR(o, start_factor=0.0), "LinearLR: expected 0 < start_factor <= 1, got 0.0"),
    (lambda o: S.ConstantLR(o, factor=2.0), "ConstantLR: expected 0 <= factor <= 1, got 2.0"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0), "OneCycleLR: give either total_steps or both epochs and steps_per_epoch"),
    (lambda o: S.OneCycleLR(o, max_lr=1.0, total_steps=10, pct_start=1.5),
     "OneCycleLR: expected a float 0 <= pct_start <= 1, got 1.5"),
    (lambda o: S.OneCycleLR(o, max_lr=[1.0], total_steps=10), "max_lr"),
    (lambda o: S.CosineAnnealingLR(o, T_max=0), "CosineAnnealingLR: expected T_max > 0, got 0"),
    (lambda o: S.StepLR("not an optimizer", step_size=3), "StepLR: expected a dlcourse.optim optimizer, got str"),
    (lambda o: S.ReduceLROnPlateau(o, factor=1.5), "ReduceLROnPlateau: expected factor < 1, got 1.5"),
    (lambda o: S.SequentialLR(o, [S.ExponentialLR(o, 0.9)], milestones=[3]),
     "SequentialLR: expected 0 milestones for 1 schedulers, got 1"),
])
def test_bad_arguments_raise_value_error(make, message):
    ours_opt, _ = pair()
    with pytest.raises(ValueError, match=message):
        make(ours_opt)


def test_onecycle_stepping_past_total_steps_says_so():
    ours_opt, _ = pair()
    sched = S.OneCycleLR(ours_opt, max_lr=1.0, total_steps=5)
    for _ in range(4):
        sched.step()
    with pytest.raises(ValueError, match="total_steps is 5"):
        sched.step()
        sched.step()


@pytest.mark.parametrize("three_phase", [False, True])
def test_onecycle_past_total_steps_raises_where_torch_raises(three_phase):
    """Issue 20 (left from round one; already so when checked): both libraries give the same rate through step
    ``total_steps`` and raise on the step after it, never a silent rate of 0."""
    ours_opt, theirs_opt = pair()
    ours = S.OneCycleLR(ours_opt, max_lr=1.0, total_steps=6, three_phase=three_phase)
    theirs = torch.optim.lr_scheduler.OneCycleLR(theirs_opt, max_lr=1.0, total_steps=6, three_phase=three_phase)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torch: "optimizer.step() before lr_scheduler.step()"
        for _ in range(6):
            ours.step()
            theirs.step()
            assert ours.get_last_lr() == pytest.approx(theirs.get_last_lr(), rel=1e-12)
        with pytest.raises(ValueError, match="Tried to step 7 times. The specified number of total steps is 6"):
            theirs.step()
        with pytest.raises(ValueError, match="OneCycleLR: tried to step 7 times, but total_steps is 6"):
            ours.step()


def test_one_cycle_with_pct_start_one_and_one_step():
    opt = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    sched = OneCycleLR(opt, max_lr=1.0, total_steps=1, pct_start=1.0)  # PyTorch: ZeroDivisionError
    assert sched.get_last_lr() == [1.0]


def test_exponential_lr_negative_gamma_follows_torch_on_purpose():
    opt = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1)
    sched = ExponentialLR(opt, gamma=-1)
    topt = torch.optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)
    tsched = torch.optim.lr_scheduler.ExponentialLR(topt, gamma=-1)
    for _ in range(3):
        opt.step()
        sched.step()
        topt.step()
        tsched.step()
        assert np.allclose(sched.get_last_lr(), tsched.get_last_lr())
    assert sched.get_last_lr()[0] == pytest.approx(-0.1)  # a negative rate: documented in the docstring
