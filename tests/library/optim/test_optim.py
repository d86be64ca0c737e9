"""dlcourse.optim against torch.optim: hundreds of steps from the same start, float64 to ~1e-10.

Both sides get their gradient from the same NumPy function of their *own* current parameters
(a convex quadratic plus a non-linear term plus decaying noise), so any difference in an update
rule compounds over the run instead of hiding. Each option is also shown to change the
trajectory (otherwise agreeing on it would prove nothing).
"""

from __future__ import annotations

import copy

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from dlcourse import nn, optim  # noqa: E402
from dlcourse.course.ch03_optimizers import surfaces  # noqa: E402
from dlcourse.nn import Parameter  # noqa: E402
from dlcourse.runtime import num_threads  # noqa: E402

SHAPES = [(3, 4), (5,), (2, 3, 2), (7,)]
NUM_STEPS = 300
TOL = 1e-10


def grads_at(arrays, t, seed=0):
    """The gradient at step t: H p + 0.3 sin(3p) + noise whose scale first grows then decays."""
    out = []
    for k, p in enumerate(arrays):
        noise = np.random.default_rng([seed, t, k]).standard_normal(p.shape)
        scale = 2.0 if t % 50 < 5 else 1.0 / (1 + 0.02 * t)  # bursts make amsgrad's max matter
        out.append((1.0 + 0.5 * k) * p + 0.3 * np.sin(3 * p) + scale * noise)
    return out


def initial_arrays(dtype=np.float64, seed=1):
    rng = np.random.default_rng(seed)
    return [rng.standard_normal(s).astype(dtype) for s in SHAPES]


def make_groups(params, group_kwargs):
    if group_kwargs is None:
        return params
    return [{"params": params[:2], **group_kwargs[0]}, {"params": params[2:], **group_kwargs[1]}]


def run_pair(ours_cls, torch_cls, kwargs, num_steps=NUM_STEPS, dtype=np.float64, group_kwargs=None,
             on_step=None, torch_kwargs=None):
    init = initial_arrays(dtype)
    ps = [Parameter(a.copy()) for a in init]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    ours = ours_cls(make_groups(ps, group_kwargs), **kwargs)
    theirs = torch_cls(make_groups(ts, group_kwargs), **(kwargs if torch_kwargs is None else torch_kwargs))
    worst = 0.0
    for t in range(num_steps):
        for p, g in zip(ps, grads_at([p.data for p in ps], t)):
            p.grad = g.astype(dtype)
        for p, g in zip(ts, grads_at([p.detach().numpy() for p in ts], t)):
            p.grad = torch.from_numpy(g.astype(dtype))
        if on_step is not None:
            on_step(t, ours, theirs)
        ours.step()
        theirs.step()
        worst = max(worst, max(float(np.max(np.abs(p.data - q.detach().numpy()))) for p, q in zip(ps, ts)))
    return worst, ps, ts, ours, theirs


CASES = {
    "SGD": (optim.SGD, torch.optim.SGD, dict(lr=0.05)),
    "SGD momentum": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9)),
    "SGD momentum dampening wd": (optim.SGD, torch.optim.SGD,
                                  dict(lr=0.05, momentum=0.8, dampening=0.3, weight_decay=0.05)),
    "SGD nesterov wd": (optim.SGD, torch.optim.SGD, dict(lr=0.05, momentum=0.9, nesterov=True, weight_decay=0.01)),
    "Adagrad": (optim.Adagrad, torch.optim.Adagrad, dict(lr=0.1)),
    "Adagrad all options": (optim.Adagrad, torch.optim.Adagrad,
                            dict(lr=0.2, lr_decay=0.01, weight_decay=0.02, initial_accumulator_value=0.1, eps=1e-6)),
    "RMSprop": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01)),
    "RMSprop alpha momentum wd": (optim.RMSprop, torch.optim.RMSprop,
                                  dict(lr=0.005, alpha=0.9, momentum=0.7, weight_decay=0.01)),
    "RMSprop centered": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.01, centered=True)),
    "RMSprop centered momentum": (optim.RMSprop, torch.optim.RMSprop,
                                  dict(lr=0.005, centered=True, momentum=0.5, eps=1e-6)),
    "Adam": (optim.Adam, torch.optim.Adam, dict(lr=0.01)),
    "Adam betas eps wd": (optim.Adam, torch.optim.Adam, dict(lr=0.02, betas=(0.8, 0.99), eps=1e-6, weight_decay=0.05)),
    "Adam beta2=0.9": (optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.9))),
    "Adam amsgrad": (optim.Adam, torch.optim.Adam, dict(lr=0.01, betas=(0.9, 0.95), amsgrad=True)),
    "Adam amsgrad wd flat": (optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True, weight_decay=0.1, foreach=True)),
    "Adam per-parameter": (optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1, foreach=False)),
    "AdamW": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01)),
    "AdamW wd amsgrad": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.2, amsgrad=True)),
    "AdamW per-parameter": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.2, foreach=False)),
    # maximize and weight decay meet in one place (Optimizer._decayed_grad): every optimizer, every path
    "SGD maximize wd": (optim.SGD, torch.optim.SGD, dict(lr=0.005, momentum=0.5, weight_decay=0.05, maximize=True)),
    "Adagrad maximize wd": (optim.Adagrad, torch.optim.Adagrad, dict(lr=0.05, weight_decay=0.05, maximize=True)),
    "RMSprop maximize wd": (optim.RMSprop, torch.optim.RMSprop, dict(lr=0.005, weight_decay=0.05, maximize=True)),
    "Adam maximize wd flat": (optim.Adam, torch.optim.Adam,
                              dict(lr=0.01, weight_decay=0.05, maximize=True, foreach=True)),
    "Adam maximize wd per-parameter": (optim.Adam, torch.optim.Adam,
                                       dict(lr=0.01, weight_decay=0.05, maximize=True, foreach=False)),
    "AdamW maximize flat": (optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.2, maximize=True,
                                                                  foreach=True)),
    "AdamW maximize per-parameter": (optim.AdamW, torch.optim.AdamW,
                                     dict(lr=0.01, weight_decay=0.2, maximize=True, foreach=False)),
}


@pytest.mark.parametrize("name", list(CASES))
def test_trajectory_matches_torch(name):
    ours_cls, torch_cls, kwargs = CASES[name]
    worst, ps, ts, _, _ = run_pair(ours_cls, torch_cls, kwargs)
    assert worst < TOL, f"{name}: parameters differ from torch.optim by {worst:.3e} within {NUM_STEPS} steps"
    moved = max(float(np.max(np.abs(p.data - a))) for p, a in zip(ps, initial_arrays()))
    assert moved > 0.1, f"{name}: the parameters hardly moved ({moved}), the test would prove little"


@pytest.mark.parametrize("base, option", [
    ("SGD momentum", dict(nesterov=True)), ("SGD momentum", dict(dampening=0.5)), ("SGD", dict(weight_decay=0.1)),
    ("Adagrad", dict(lr_decay=0.05)), ("Adagrad", dict(initial_accumulator_value=1.0)),
    ("RMSprop", dict(centered=True)), ("RMSprop", dict(momentum=0.5)), ("RMSprop", dict(alpha=0.9)),
    ("Adam beta2=0.9", dict(amsgrad=True)), ("Adam", dict(weight_decay=0.1)), ("Adam", dict(betas=(0.5, 0.999))),
    ("Adam", dict(eps=1e-1)), ("AdamW", dict(weight_decay=0.3)),
])
def test_each_option_changes_the_trajectory(base, option):
    ours_cls, torch_cls, kwargs = CASES[base]
    _, ps_base, _, _, _ = run_pair(ours_cls, torch_cls, kwargs, num_steps=100)
    _, ps_opt, _, _, _ = run_pair(ours_cls, torch_cls, {**kwargs, **option}, num_steps=100)
    change = max(float(np.max(np.abs(p.data - q.data))) for p, q in zip(ps_base, ps_opt))
    assert change > 1e-3, f"{base} with {option}: the option changed nothing ({change:.2e})"


def test_adam_weight_decay_differs_from_adamw():
    _, ps_l2, _, _, _ = run_pair(optim.Adam, torch.optim.Adam, dict(lr=0.01, weight_decay=0.1), num_steps=100)
    _, ps_dec, _, _, _ = run_pair(optim.AdamW, torch.optim.AdamW, dict(lr=0.01, weight_decay=0.1), num_steps=100)
    assert max(float(np.max(np.abs(p.data - q.data))) for p, q in zip(ps_l2, ps_dec)) > 1e-3


@pytest.mark.parametrize("name", ["SGD momentum", "Adagrad", "RMSprop centered momentum", "Adam amsgrad", "AdamW"])
def test_param_groups_with_their_own_hyperparameters(name):
    ours_cls, torch_cls, kwargs = CASES[name]
    groups = [{"lr": kwargs["lr"] * 3}, {"weight_decay": 0.05}]
    worst, _, _, ours, theirs = run_pair(ours_cls, torch_cls, kwargs, group_kwargs=groups)
    assert worst < TOL
    assert ours.param_groups[0]["lr"] == pytest.approx(kwargs["lr"] * 3)
    assert ours.param_groups[1]["lr"] == kwargs["lr"] and ours.param_groups[1]["weight_decay"] == 0.05
    for g_o, g_t in zip(ours.param_groups, theirs.param_groups):  # same names and values as torch's groups
        for key, value in g_o.items():
            if key != "params":
                assert key in g_t and g_t[key] == value, f"param_groups key {key!r}: ours {value}, torch {g_t.get(key)}"


@pytest.mark.parametrize("name", ["SGD nesterov wd", "Adam amsgrad", "RMSprop centered", "Adagrad all options"])
def test_lr_written_into_param_groups_mid_run(name):
    ours_cls, torch_cls, kwargs = CASES[name]

    def on_step(t, ours, theirs):
        if t % 40 == 0:
            for k, (g_o, g_t) in enumerate(zip(ours.param_groups, theirs.param_groups)):
                new_lr = kwargs["lr"] * (0.5 + 0.1 * ((t // 40 + k) % 7))
                g_o["lr"] = new_lr
                g_t["lr"] = new_lr

    worst, _, _, _, _ = run_pair(ours_cls, torch_cls, kwargs, group_kwargs=[{}, {}], on_step=on_step)
    assert worst < TOL


def test_param_groups_lr_is_read_each_step():
    p = Parameter(np.array([1.0]))
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.array([1.0])
    opt.step()
    opt.param_groups[0]["lr"] = 0.5
    opt.step()
    assert p.data[0] == pytest.approx(1.0 - 0.1 - 0.5)


@pytest.mark.parametrize("name", ["SGD momentum", "Adagrad all options", "RMSprop centered momentum",
                                  "Adam amsgrad", "Adam amsgrad wd flat", "AdamW per-parameter"])
def test_state_dict_round_trip_continues_exactly(name):
    """Stop after 150 steps, save, load into a fresh optimizer, continue: same as never stopping."""
    ours_cls, torch_cls, kwargs = CASES[name]
    _, ps_full, _, _, _ = run_pair(ours_cls, torch_cls, kwargs, num_steps=300)

    init = initial_arrays()
    ps = [Parameter(a.copy()) for a in init]
    opt = ours_cls(ps, **kwargs)
    for t in range(300):
        if t == 150:
            saved = copy.deepcopy(opt.state_dict())
            fresh = [Parameter(p.data.copy()) for p in ps]
            opt = ours_cls(fresh, **kwargs)
            opt.load_state_dict(saved)
            ps = fresh
        for p, g in zip(ps, grads_at([p.data for p in ps], t)):
            p.grad = g
        opt.step()
    assert max(float(np.max(np.abs(p.data - q.data))) for p, q in zip(ps, ps_full)) == 0.0


@pytest.mark.parametrize("name", ["SGD momentum dampening wd", "Adagrad all options", "RMSprop centered momentum",
                                  "Adam amsgrad", "AdamW"])
def test_load_torch_state_dict_and_continue(name):
    """Half the run in torch, then both continue from torch's state: still in step."""
    ours_cls, torch_cls, kwargs = CASES[name]

    def on_step(t, ours, theirs):
        if t == 100:
            sd = theirs.state_dict()
            for p, q in zip([p for g in ours.param_groups for p in g["params"]],
                            [q for g in theirs.param_groups for q in g["params"]]):
                p.data = q.detach().numpy().copy()
            ours.load_state_dict(sd)

    worst, _, _, ours, _ = run_pair(ours_cls, torch_cls, kwargs, num_steps=250, on_step=on_step)
    assert worst < TOL
    state = next(iter(ours.state.values()))
    assert all(isinstance(v, (float, np.ndarray)) for v in state.values())


def test_state_dict_layout_matches_torch():
    worst, _, _, ours, theirs = run_pair(optim.Adam, torch.optim.Adam, dict(lr=0.01, amsgrad=True),
                                         num_steps=5, group_kwargs=[{}, {"lr": 0.1}])
    sd_o, sd_t = ours.state_dict(), theirs.state_dict()
    assert set(sd_o) == set(sd_t) == {"state", "param_groups"}
    assert sorted(sd_o["state"]) == sorted(sd_t["state"])
    assert [g["params"] for g in sd_o["param_groups"]] == [g["params"] for g in sd_t["param_groups"]]
    for k in sd_t["state"]:
        assert set(sd_o["state"][k]) == set(sd_t["state"][k])
        assert sd_o["state"][k]["step"] == float(sd_t["state"][k]["step"])
    # the saved arrays are copies: stepping on does not change them
    before = sd_o["state"][0]["exp_avg"].copy()
    for g in ours.param_groups:
        for p in g["params"]:
            p.grad = np.ones_like(p.data)
    ours.step()
    np.testing.assert_array_equal(sd_o["state"][0]["exp_avg"], before)


def test_load_state_dict_rejects_mismatched_groups():
    ps = [Parameter(a) for a in initial_arrays()]
    opt = optim.Adam(ps)
    with pytest.raises(ValueError, match="parameter group"):
        opt.load_state_dict({"state": {}, "param_groups": []})
    with pytest.raises(ValueError, match="has 4 parameters"):
        opt.load_state_dict({"state": {}, "param_groups": [{"params": [0, 1], "lr": 0.1}]})


@pytest.mark.parametrize("cls, kwargs", [
    (optim.SGD, dict(lr=0.01, momentum=0.9, nesterov=True)), (optim.Adagrad, dict(lr=0.1)),
    (optim.RMSprop, dict(momentum=0.5, centered=True)), (optim.Adam, dict(amsgrad=True)),
    (optim.AdamW, dict(foreach=False)),
])
def test_float32_stays_float32_and_matches_torch_loosely(cls, kwargs):
    torch_cls = getattr(torch.optim, cls.__name__)
    worst, ps, _, ours, _ = run_pair(cls, torch_cls, kwargs, num_steps=100, dtype=np.float32)
    assert all(p.data.dtype == np.float32 for p in ps)
    for state in ours.state.values():
        for name, value in state.items():
            if isinstance(value, np.ndarray):
                assert value.dtype == np.float32, f"{cls.__name__} state {name} is {value.dtype}"
    assert worst < 1e-4


def test_step_updates_in_place_and_skips_parameters_without_grad():
    a, b = Parameter(np.ones(3)), Parameter(np.ones(2))
    data_a = a.data
    opt = optim.Adam([a, b], lr=0.1)
    a.grad = np.ones(3)
    opt.step()
    assert a.data is data_a and np.all(a.data < 1)
    np.testing.assert_array_equal(b.data, np.ones(2))
    assert b not in opt.state or not opt.state[b]


def test_zero_grad():
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones(3)
    opt.zero_grad(set_to_none=False)
    np.testing.assert_array_equal(p.grad, np.zeros(3))
    opt.zero_grad()
    assert p.grad is None


def test_closure_is_called_and_returned():
    p = Parameter(np.array([2.0]))
    opt = optim.SGD([p], lr=0.1)

    def closure():
        p.grad = 2 * p.data
        return float(p.data[0] ** 2)

    assert opt.step(closure) == 4.0
    assert p.data[0] == pytest.approx(2.0 - 0.1 * 4.0)


@pytest.mark.parametrize("make, message", [
    (lambda ps: optim.SGD(ps, lr=-1), "SGD: expected lr >= 0, got -1"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=-0.5), "SGD: expected momentum >= 0, got -0.5"),
    (lambda ps: optim.SGD(ps, lr=0.1, nesterov=True),
     "Nesterov momentum needs momentum > 0 and dampening = 0, got momentum=0.0, dampening=0.0"),
    (lambda ps: optim.SGD(ps, lr=0.1, momentum=0.9, dampening=0.1, nesterov=True),
     "Nesterov momentum needs momentum > 0 and dampening = 0, got momentum=0.9, dampening=0.1"),
    (lambda ps: optim.Adam(ps, betas=(1.0, 0.999)), r"Adam: expected 0 <= betas\[0\] < 1, got 1.0"),
    (lambda ps: optim.Adam(ps, betas=(0.9,)), r"Adam: expected betas=\(beta1, beta2\), got \(0.9,\)"),
    (lambda ps: optim.Adam(ps, eps=-1), "Adam: expected eps >= 0, got -1"),
    (lambda ps: optim.AdamW(ps, weight_decay=-0.1), "AdamW: expected weight_decay >= 0, got -0.1"),
    (lambda ps: optim.RMSprop(ps, alpha=-0.1), "RMSprop: expected alpha >= 0, got -0.1"),
    (lambda ps: optim.Adagrad(ps, lr_decay=-1), "Adagrad: expected lr_decay >= 0, got -1"),
    (lambda ps: optim.SGD([], lr=0.1), "SGD: got an empty parameter list"),
    (lambda ps: optim.SGD(ps[0], lr=0.1), r"got a single Parameter \(wrap it in a list: \[p\]\)"),
    (lambda ps: optim.SGD([ps[0], ps[0]], lr=0.1), "some parameters appear more than once"),
    (lambda ps: optim.SGD([np.ones(3)], lr=0.1), "can only optimize dlcourse Parameters, got numpy.ndarray"),
    (lambda ps: optim.make_optimizer("adamax", ps), r"expected an optimizer name in \['adagrad', 'adam', 'adamw', "
                                                    r"'rmsprop', 'sgd'\], got 'adamax'"),
    (lambda ps: optim.make_optimizer("sgd", ps, library="jax"), "expected library 'numpy' or 'torch', got 'jax'"),
])
def test_bad_arguments_raise_value_error(make, message):
    ps = [Parameter(np.ones(3)), Parameter(np.ones(2))]
    with pytest.raises(ValueError, match=message):
        make(ps)


def test_the_optimizer_registry_builds_both_libraries():
    ps = [Parameter(np.ones(3))]
    for name, cls in optim.OPTIMIZERS.items():
        ours = optim.make_optimizer(name.upper(), ps, lr=0.01)
        theirs = optim.make_optimizer(name, [torch.ones(3, requires_grad=True)], library="torch", lr=0.01)
        assert type(ours) is cls and type(theirs) is getattr(torch.optim, cls.__name__)
        assert ours.param_groups[0]["lr"] == theirs.param_groups[0]["lr"] == 0.01


def test_passing_a_module_instead_of_its_parameters_says_so():
    model = nn.Linear(2, 3)
    with pytest.raises(ValueError, match="model.parameters"):
        optim.SGD(model, lr=0.1)


def test_gradient_of_wrong_shape_raises():
    p = Parameter(np.ones(3))
    opt = optim.SGD([p], lr=0.1)
    p.grad = np.ones(4)
    with pytest.raises(ValueError, match="shape"):
        opt.step()


def test_flush_subnormal_and_adam_moments_stay_normal():
    x = np.array([1e-40, -1e-41, 1e-30, 0.0, -2.0], dtype=np.float32)
    optim.flush_subnormal(x)
    np.testing.assert_array_equal(x, np.array([0, 0, 1e-30, 0, -2], dtype=np.float32))

    tiny = np.finfo(np.float32).tiny
    p = Parameter(np.ones(1000, dtype=np.float32))
    opt = optim.Adam([p], lr=1e-3)
    p.grad = np.full(1000, 1e-19, dtype=np.float32)  # g^2 = 1e-38: the second moment starts subnormal
    opt.step()
    assert np.any((opt.state[p]["exp_avg_sq"] != 0) & (np.abs(opt.state[p]["exp_avg_sq"]) < tiny))
    p.grad = np.zeros(1000, dtype=np.float32)
    for _ in range(optim.Adam.flush_every):
        opt.step()
    for name in ("exp_avg", "exp_avg_sq"):
        v = opt.state[p][name]
        assert not np.any((v != 0) & (np.abs(v) < tiny)), f"{name} still holds subnormal numbers"


def test_flat_path_survives_changing_sets_of_gradients():
    """Parameters that get no gradient at some steps: the flat path falls back without losing agreement."""
    init = initial_arrays()
    ps = [Parameter(a.copy()) for a in init]
    ts = [torch.tensor(a.copy(), requires_grad=True) for a in init]
    ours, theirs = optim.Adam(ps, lr=0.01, foreach=True), torch.optim.Adam(ts, lr=0.01)
    for t in range(120):
        skip = 2 if 30 <= t < 60 else None
        for k, (p, g) in enumerate(zip(ps, grads_at([p.data for p in ps], t))):
            p.grad = None if k == skip else g
        for k, (p, g) in enumerate(zip(ts, grads_at([p.detach().numpy() for p in ts], t))):
            p.grad = None if k == skip else torch.from_numpy(g)
        ours.step()
        theirs.step()
    assert max(float(np.max(np.abs(p.data - q.detach().numpy()))) for p, q in zip(ps, ts)) < TOL


def test_training_an_mlp_with_adam_matches_torch():
    """Our MLP + our Adam vs torch's MLP + torch's Adam, 200 full-batch steps on moons (float64)."""
    from dlcourse.data import make_moons
    X, y = make_moons(200, noise=0.2, seed=0)
    torch.manual_seed(0)
    twin = torch.nn.Sequential(torch.nn.Linear(2, 16), torch.nn.Tanh(), torch.nn.Linear(16, 2)).double()
    model = nn.Sequential(nn.Linear(2, 16), nn.Tanh(), nn.Linear(16, 2))
    model.load_state_dict({k: v.detach().numpy() for k, v in twin.state_dict().items()})
    ours, theirs = optim.Adam(model.parameters(), lr=0.02), torch.optim.Adam(twin.parameters(), lr=0.02)
    crit, tcrit = nn.CrossEntropyLoss(), torch.nn.CrossEntropyLoss()
    Xt, yt = torch.from_numpy(X), torch.from_numpy(y)
    with num_threads(1):  # two thread pools in one process slow each other down badly
        for _ in range(200):
            ours.zero_grad()
            crit(model(X), y)
            model.backward(crit.backward())
            ours.step()
            theirs.zero_grad()
            tcrit(twin(Xt), yt).backward()
            theirs.step()
    final = {k: v.detach().numpy() for k, v in twin.state_dict().items()}
    diff = max(float(np.max(np.abs(model.state_dict()[k] - final[k]))) for k in final)
    assert diff < 1e-9, f"MLP weights differ from torch's by {diff:.2e} after 200 Adam steps"
    assert crit(model(X), y) < 0.35


# -- the helpers the chapter uses ------------------------------------------------------------


@pytest.mark.parametrize("name", list(surfaces.SURFACES))
def test_surface_gradients_are_exact(name):
    s = surfaces.SURFACES[name]()
    rng = np.random.default_rng(0)
    for _ in range(5):
        w = rng.uniform([s.xlim[0], s.ylim[0]], [s.xlim[1], s.ylim[1]])
        h = 1e-6
        num = [(s(w + h * e) - s(w - h * e)) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(s.grad(w), num, rtol=1e-6, atol=1e-8)


@pytest.mark.parametrize("name", ["SGD momentum", "SGD nesterov wd", "Adagrad", "RMSprop centered", "Adam amsgrad",
                                  "AdamW"])
def test_surface_runs_agree_with_torch(name):
    ours_cls, torch_cls, kwargs = CASES[name]
    kwargs = {**kwargs, "lr": 5e-4 if ours_cls is optim.SGD else kwargs["lr"] / 10}  # Rosenbrock's curvature ~2000
    s = surfaces.rosenbrock()
    ours = surfaces.run_on_surface(s, lambda ps: ours_cls(ps, **kwargs), 300)
    theirs = surfaces.run_on_surface_torch(s, lambda ps: torch_cls(ps, **kwargs), 300)
    assert ours.diverged_at is None and theirs.diverged_at is None
    assert np.max(np.abs(ours.path - theirs.path)) < TOL


def test_surface_run_reports_divergence_instead_of_nan():
    s = surfaces.ill_conditioned_quadratic(1.0, 20.0)
    stable = surfaces.run_on_surface(s, lambda ps: optim.SGD(ps, lr=0.09), 200)
    unstable = surfaces.run_on_surface(s, lambda ps: optim.SGD(ps, lr=0.11), 2000)
    assert stable.diverged_at is None and stable.final_loss < 1e-3
    assert unstable.diverged_at is not None and np.all(np.isfinite(unstable.losses))


def test_chapter_exercise_references_agree_with_the_optimizers():
    """The ch3 exercise solutions are the update rules of optim.SGD / Adam / AdamW (and torch's)."""
    from dlcourse.course.checker import reference
    rng = np.random.default_rng(0)
    w0, g1, g2 = rng.standard_normal(4), rng.standard_normal(4), rng.standard_normal(4)
    p = Parameter(w0.copy())
    sgd = optim.SGD([p], lr=0.1, momentum=0.9)
    p.grad = g1
    sgd.step()
    buf = sgd.state[p]["momentum_buffer"].copy()
    w_ref, buf_ref = reference("ch3.sgd_momentum_step")(p.data.copy(), buf, g2, 0.1, 0.9)
    p.grad = g2
    sgd.step()
    np.testing.assert_allclose(p.data, w_ref, rtol=1e-14)
    np.testing.assert_allclose(sgd.state[p]["momentum_buffer"], buf_ref, rtol=1e-14)

    for cls, name, extra in [(optim.Adam, "ch3.adam_step", None), (optim.AdamW, "ch3.adamw_step", 0.05)]:
        p = Parameter(w0.copy())
        opt = cls([p], lr=0.01, weight_decay=extra or 0.0)
        w, m, v = w0.copy(), np.zeros(4), np.zeros(4)
        for t, g in enumerate([g1, g2, g1], start=1):
            p.grad = g
            opt.step()
            args = (0.01, 0.9, 0.999, 1e-8) if extra is None else (0.01, extra)
            w, m, v = reference(name)(w, m, v, g, t, *args)
        np.testing.assert_allclose(p.data, w, rtol=1e-12)
        np.testing.assert_allclose(opt.state[p]["exp_avg_sq"], v, rtol=1e-12)

    lrs = reference("ch3.cosine_lr")(0.1, 0.001, np.arange(0, 31), 30)
    ps = [torch.zeros(1, requires_grad=True)]
    opt = torch.optim.SGD(ps, lr=0.1)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=30, eta_min=0.001)
    torch_lrs = [opt.param_groups[0]["lr"]]
    for _ in range(30):
        opt.step()
        sched.step()
        torch_lrs.append(opt.param_groups[0]["lr"])
    np.testing.assert_allclose(lrs, torch_lrs, rtol=1e-12)
    assert reference("ch3.max_stable_lr")(np.diag([1.0, 20.0])) == pytest.approx(0.1)


def test_train_classifier_reports_divergence_and_runs_schedules():
    from dlcourse.course.ch03_optimizers.toy_training import make_mlp, train_classifier
    from dlcourse.data import make_moons
    X, y = make_moons(200, noise=0.2, seed=0)
    model = make_mlp(2, (16,), 2)
    run = train_classifier(model, X, y, optim.SGD(model.parameters(), lr=1e4), num_epochs=20)
    assert run.diverged_at is not None and all(np.isfinite(run.step_losses))
    model = make_mlp(2, (16,), 2)
    opt = optim.Adam(model.parameters(), lr=0.05)
    sched = optim.lr_scheduler.StepLR(opt, step_size=10, gamma=0.5)
    run = train_classifier(model, X, y, opt, num_epochs=5, batch_size=32, scheduler=sched)
    assert run.diverged_at is None and run.steps_per_epoch == 7 and len(run.step_losses) == 35
    assert opt.param_groups[0]["lr"] == pytest.approx(0.05 * 0.5 ** 3)
    assert run.epoch_losses[-1] < run.epoch_losses[0] and len(run.epoch_times) == 6
    with pytest.raises(ValueError, match="batch_size"):
        train_classifier(model, X, y, opt, batch_size=0)


# -- issue 20: torch tensors as gradients; a state dict handed straight to torch.optim ------------------------------


@pytest.mark.parametrize("name", ["SGD", "Adam"])
def test_a_torch_tensor_gradient_steps_like_the_numpy_one(name):
    """Before: p.grad = tensor; opt.step() failed with "'Tensor' object has no attribute 'astype'"."""
    import torch

    runs = []
    for as_tensor in (False, True):
        p = Parameter(np.arange(6, dtype=np.float32).reshape(2, 3))
        opt = getattr(optim, name)([p], lr=0.1)
        for k in range(3):
            g = np.full((2, 3), k + 1.0, dtype=np.float32)
            p.grad = torch.from_numpy(g) if as_tensor else g
            assert type(p.grad) is np.ndarray
            opt.step()
        runs.append(p.data.copy())
    np.testing.assert_array_equal(runs[0], runs[1])


def test_a_state_dict_handed_straight_to_torch_optim_names_as_torch_state_dict():
    """Before: torch.optim's load_state_dict failed inside PyTorch ("expected a sequence of integers ... got
    '<generator object ...>'")."""
    import torch

    ours = nn.Linear(2, 3)
    opt = optim.Adam(ours.parameters(), lr=0.1)
    for p in ours.parameters():
        p.grad = np.ones(p.shape, np.float32)
    opt.step()
    theirs = torch.nn.Linear(2, 3)
    torch_opt = torch.optim.Adam(theirs.parameters(), lr=0.1)
    with pytest.raises(TypeError, match=r"torch.optim needs tensors: torch_opt.load_state_dict\(dlcourse.optim."
                                        r"as_torch_state_dict\(opt.state_dict\(\)\)\)"):
        torch_opt.load_state_dict(opt.state_dict())
    assert not torch_opt.state  # left as it was
    torch_opt.load_state_dict(optim.as_torch_state_dict(opt.state_dict()))
    np.testing.assert_array_equal(torch_opt.state[theirs.weight]["exp_avg"].numpy(), opt.state[ours.weight]["exp_avg"])
    state = opt.state_dict()["state"][0]["exp_avg"]  # otherwise an ordinary array, and pickled as one
    assert isinstance(state, np.ndarray) and repr(state).startswith("array(")
    assert type(copy.deepcopy(opt.state_dict())["state"][0]["exp_avg"] * 2).__name__ in ("StateArray", "ndarray")
    import pickle
    assert type(pickle.loads(pickle.dumps(state))) is np.ndarray


# -- clear errors instead of raw ones (issue 12) ---------------------------------------------------------------------


def test_optimizer_names_the_library_of_foreign_parameters():
    with pytest.raises(ValueError, match=r"SGD \(dlcourse.optim\).*torch.nn.parameter.Parameter \(from PyTorch\).*"
                                         "use torch.optim"):
        optim.SGD(torch.nn.Linear(2, 2).parameters(), lr=0.1)


def test_learning_rate_as_a_string_is_a_type_error():
    with pytest.raises(TypeError, match=r"expected a number for lr, got str '0.1'"):
        optim.Adam(nn.Linear(2, 2).parameters(), lr="0.1")


def test_optimizer_state_dict_of_another_kind_is_refused():
    sgd = optim.SGD(nn.Linear(2, 2).parameters(), lr=0.1, momentum=0.9)
    adam_state = optim.Adam(nn.Linear(2, 2).parameters()).state_dict()
    with pytest.raises(ValueError, match=r"not from a SGD.*lacks \['dampening', 'momentum', 'nesterov'\]"):
        sgd.load_state_dict(adam_state)


@pytest.mark.parametrize("name,kwargs", [("SGD", dict(lr=0.1, momentum=0.9)), ("Adam", dict(lr=0.01)),
                                         ("AdamW", dict(lr=0.01)), ("RMSprop", dict(lr=0.01, momentum=0.5)),
                                         ("Adagrad", dict(lr=0.01))])
def test_optimizer_state_dict_round_trip_with_torch(name, kwargs):
    ours_model = nn.Linear(3, 2, dtype=np.float64)
    ours = getattr(optim, name)(ours_model.parameters(), **kwargs)
    ours_model.forward(np.ones((4, 3)))
    ours_model.backward(np.ones((4, 2)))
    ours.step()
    torch_model = torch.nn.Linear(3, 2).double()
    theirs = getattr(torch.optim, name)(torch_model.parameters(), **kwargs)
    theirs.load_state_dict(optim.as_torch_state_dict(ours.state_dict()))
    for p in torch_model.parameters():
        p.grad = torch.ones_like(p)
    theirs.step()
    ours.load_state_dict(theirs.state_dict())
    for k, entry in theirs.state_dict()["state"].items():
        mine = ours.state_dict()["state"][k]
        for key, value in entry.items():
            assert np.allclose(np.asarray(mine[key]), value.numpy() if hasattr(value, "numpy") else value), key
