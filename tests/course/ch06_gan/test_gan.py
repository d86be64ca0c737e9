"""Chapter 6: the NumPy GAN step against the same GAN written in PyTorch, the toy distributions,
the mode-coverage measure, the training loop, the widget and the exercises."""

import numpy as np
import pytest
import torch

import dlcourse
from dlcourse.course.ch06_gan import gan
from dlcourse.data import toy2d
from dlcourse.gradcheck import numerical_gradient, relative_error
from dlcourse.nn import BCEWithLogitsLoss, Linear, NonFiniteLossError
from dlcourse.optim import SGD, Adam
from dlcourse.runtime import num_threads
from dlcourse.train import TrainingDivergedError


@pytest.fixture(autouse=True)
def one_thread():
    """Networks this small run fastest on one thread; two thread pools in one process fight."""
    with num_threads(1):
        yield


# ---------------------------------------------------------------------------------------
# The reference: a GAN step written the way a PyTorch user writes it
# ---------------------------------------------------------------------------------------


class Recorder:
    """Wraps an optimizer; at each step() keeps a copy of every gradient it is about to apply."""

    def __init__(self, opt, named_params):
        self.opt, self.named = opt, list(named_params)
        self.grads = []

    def zero_grad(self):
        self.opt.zero_grad()

    def step(self):
        self.grads.append({n: np.array(_np(p.grad), copy=True) for n, p in self.named})
        self.opt.step()


def _np(x):
    return x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)


def torch_gan_step(G, D, opt_G, opt_D, real_batches, z_D, z_G, generator_loss):
    bce = torch.nn.BCEWithLogitsLoss()
    losses_D, d_real, d_fake = [], None, None
    for real, z in zip(real_batches, z_D):
        opt_D.zero_grad()
        fake = G(z).detach()
        logits_real, logits_fake = D(real), D(fake)
        loss_D = bce(logits_real, torch.ones_like(logits_real)) + bce(logits_fake, torch.zeros_like(logits_fake))
        loss_D.backward()
        opt_D.step()
        losses_D.append(loss_D.item())
        d_real, d_fake = torch.sigmoid(logits_real).mean().item(), torch.sigmoid(logits_fake).mean().item()
    opt_G.zero_grad()
    D.requires_grad_(False)
    logits = D(G(z_G))
    if generator_loss == "non_saturating":
        loss_G = bce(logits, torch.ones_like(logits))
    else:
        loss_G = -bce(logits, torch.zeros_like(logits))
    loss_G.backward()
    D.requires_grad_(True)
    opt_G.step()
    return {"loss_D": losses_D, "loss_G": loss_G.item(), "D_real": d_real, "D_fake": d_fake,
            "D_fake_G": torch.sigmoid(logits).mean().item()}


def _pair(seed, dtype, latent_dim, hidden_size, data_dim=2):
    dlcourse.manual_seed(seed)
    G = gan.make_generator(latent_dim, hidden_size, data_dim, dtype=dtype)
    D = gan.make_discriminator(data_dim, hidden_size, dtype=dtype)
    # random non-zero biases everywhere (PyTorch's init already gives them, this makes it sure)
    rng = np.random.default_rng(seed + 100)
    for p in list(G.parameters()) + list(D.parameters()):
        p.data[...] = rng.uniform(-0.5, 0.5, p.data.shape).astype(dtype)
    return G, D, gan.to_torch(G), gan.to_torch(D)


def _run_both(seed, dtype, k, generator_loss, optimizer, n_steps=1):
    rng = np.random.default_rng(seed)
    latent_dim, hidden_size, data_dim = int(rng.integers(1, 6)), int(rng.integers(3, 17)), int(rng.integers(1, 4))
    batch = int(rng.integers(2, 20))
    G, D, Gt, Dt = _pair(seed, dtype, latent_dim, hidden_size, data_dim)
    if optimizer == "sgd":
        make_ours = lambda m: SGD(m.parameters(), lr=0.05, momentum=0.9)
        make_theirs = lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9)
    else:
        make_ours = lambda m: Adam(m.parameters(), lr=0.01, betas=(0.5, 0.999))
        make_theirs = lambda m: torch.optim.Adam(m.parameters(), lr=0.01, betas=(0.5, 0.999))
    oG, oD = Recorder(make_ours(G), G.named_parameters()), Recorder(make_ours(D), D.named_parameters())
    tG, tD = Recorder(make_theirs(Gt), Gt.named_parameters()), Recorder(make_theirs(Dt), Dt.named_parameters())
    results = []
    for _ in range(n_steps):
        # real batches of a different size than the noise batches: the halves must not be mixed up
        reals = [rng.standard_normal((batch + 1, data_dim)).astype(dtype) * 2 for _ in range(k)]
        z_D = [rng.standard_normal((batch, latent_dim)).astype(dtype) for _ in range(k)]
        z_G = rng.standard_normal((batch + 2, latent_dim)).astype(dtype)
        ours = gan.gan_step(G, D, oG, oD, reals, z_D, z_G, generator_loss)
        theirs = torch_gan_step(Gt, Dt, tG, tD, [torch.as_tensor(r) for r in reals],
                                [torch.as_tensor(z) for z in z_D], torch.as_tensor(z_G), generator_loss)
        results.append((ours, theirs))
    return G, D, Gt, Dt, oG, oD, tG, tD, results


def _assert_close(a, b, rtol, what):
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    scale = max(float(np.max(np.abs(b))), 1e-3)
    err = float(np.max(np.abs(a - b))) / scale
    assert err <= rtol, f"{what}: relative difference {err:.2e} > {rtol:.0e}"


@pytest.mark.parametrize("generator_loss", gan.GENERATOR_LOSSES)
@pytest.mark.parametrize("k", [1, 3])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_one_gan_step_matches_torch_float64(seed, k, generator_loss):
    G, D, Gt, Dt, oG, oD, tG, tD, [(ours, theirs)] = _run_both(seed, np.float64, k, generator_loss, "sgd")
    for key in ("loss_G", "D_real", "D_fake", "D_fake_G"):
        _assert_close(ours[key], theirs[key], 1e-10, key)
    _assert_close(ours["loss_D"], theirs["loss_D"], 1e-10, "loss_D")
    assert len(oD.grads) == len(tD.grads) == k and len(oG.grads) == len(tG.grads) == 1
    for i in range(k):  # every gradient of D, in each of the k discriminator steps
        assert oD.grads[i].keys() == tD.grads[i].keys()
        for name in tD.grads[i]:
            _assert_close(oD.grads[i][name], tD.grads[i][name], 1e-10, f"D step {i}: grad {name}")
    for name in tG.grads[0]:  # every gradient of G in the generator step
        _assert_close(oG.grads[0][name], tG.grads[0][name], 1e-10, f"G step: grad {name}")
    # after the step, the weights of both networks agree, and D's .grad still holds its own
    # last gradient: the generator step did not write into it (in either library)
    for ours_m, theirs_m in ((G, Gt), (D, Dt)):
        for (name, p), (_, q) in zip(ours_m.named_parameters(), theirs_m.named_parameters()):
            _assert_close(p.data, _np(q), 1e-10, f"weights {name}")
    for (name, p), (_, q) in zip(D.named_parameters(), Dt.named_parameters()):
        _assert_close(p.grad, oD.grads[-1][name], 0.0, f"D grad {name} after the G step")
        _assert_close(p.grad, _np(q.grad), 1e-10, f"D grad {name} vs torch after the G step")


def test_gan_steps_with_adam_follow_torch_for_many_steps():
    *_, results = _run_both(7, np.float64, 2, "non_saturating", "adam", n_steps=25)
    for step, (ours, theirs) in enumerate(results):
        _assert_close(ours["loss_D"], theirs["loss_D"], 1e-8, f"step {step}: loss_D")
        _assert_close(ours["loss_G"], theirs["loss_G"], 1e-8, f"step {step}: loss_G")


def test_one_gan_step_matches_torch_float32():
    G, D, Gt, Dt, oG, oD, tG, tD, [(ours, theirs)] = _run_both(3, np.float32, 2, "non_saturating", "adam")
    _assert_close(ours["loss_D"], theirs["loss_D"], 1e-4, "loss_D")
    _assert_close(ours["loss_G"], theirs["loss_G"], 1e-4, "loss_G")
    for name in tG.grads[0]:
        _assert_close(oG.grads[0][name], tG.grads[0][name], 1e-4, f"G grad {name}")
        assert oG.grads[0][name].dtype == np.float32
    for name in tD.grads[-1]:
        _assert_close(oD.grads[-1][name], tD.grads[-1][name], 1e-4, f"D grad {name}")


def _loss_G_value(G, D, z, generator_loss):
    logits = D.forward(G.forward(z))
    bce = BCEWithLogitsLoss()
    return bce(logits, np.ones_like(logits)) if generator_loss == "non_saturating" else -bce(logits,
                                                                                             np.zeros_like(logits))


@pytest.mark.parametrize("generator_loss", gan.GENERATOR_LOSSES)
def test_generator_gradient_through_D_matches_central_differences(generator_loss):
    G, D, *_ = _pair(4, np.float64, 3, 5)
    z = np.random.default_rng(0).standard_normal((7, 3))
    before = {n: p.data.copy() for n, p in G.named_parameters()}
    opt = SGD(G.parameters(), lr=0.0)  # lr 0: the step leaves G as it is, the gradients stay readable
    gan.generator_step(G, D, z, opt, generator_loss)
    for name, p in G.named_parameters():
        assert np.array_equal(p.data, before[name])
        numeric = numerical_gradient(lambda: _loss_G_value(G, D, z, generator_loss), p.data)
        assert relative_error(p.grad, numeric) < 1e-7, name


def test_discriminator_gradient_matches_central_differences():
    G, D, *_ = _pair(5, np.float64, 2, 6)
    rng = np.random.default_rng(1)
    real, z = rng.standard_normal((9, 2)), rng.standard_normal((4, 2))
    stats = gan.discriminator_step(G, D, real, z, SGD(D.parameters(), lr=0.0))
    bce = BCEWithLogitsLoss()
    fake = G.forward(z)

    def loss_D():
        lr, lf = D.forward(real), D.forward(fake)
        return bce(lr, np.ones_like(lr)) + bce(lf, np.zeros_like(lf))

    assert stats["loss_D"] == pytest.approx(loss_D(), rel=1e-12)
    for name, p in D.named_parameters():
        assert relative_error(p.grad, numerical_gradient(loss_D, p.data)) < 1e-7, name
    assert all(p.grad is None for p in G.parameters()), "the discriminator step must not give G a gradient"


def test_saturating_and_non_saturating_gradients_with_respect_to_the_logit():
    logits = np.linspace(-8, 8, 33)[:, None]
    d = 1 / (1 + np.exp(-logits))
    bce = BCEWithLogitsLoss()
    bce(logits, np.ones_like(logits))
    ns = bce.backward()
    bce(logits, np.zeros_like(logits))
    sat = -bce.backward()
    n = logits.size
    np.testing.assert_allclose(ns, (d - 1) / n, rtol=1e-12)
    np.testing.assert_allclose(sat, -d / n, rtol=1e-12)
    # when D rejects the fakes (D(G(z)) -> 0), the saturating gradient vanishes, the other does not
    assert abs(sat[0, 0]) * n < 1e-3 and abs(ns[0, 0]) * n > 0.99


def test_frozen_restores_flags_and_blocks_accumulation():
    D = gan.make_discriminator(2, 4, dtype=np.float64)
    D.parameters().__next__().requires_grad = False  # a parameter frozen beforehand stays frozen
    x = np.ones((3, 2))
    with gan.frozen(D):
        D.forward(x)
        dx = D.backward(np.ones((3, 1)))
        assert all(p.grad is None for p in D.parameters())
    assert dx.shape == (3, 2) and np.abs(dx).sum() > 0
    assert [p.requires_grad for p in D.parameters()] == [False] + [True] * (len(list(D.parameters())) - 1)


def test_to_torch_gives_the_same_function():
    G = gan.make_generator(3, 8, 2, dtype=np.float64)
    x = np.random.default_rng(0).standard_normal((5, 3))
    np.testing.assert_allclose(G.forward(x), _np(gan.to_torch(G)(torch.as_tensor(x))), rtol=1e-12)
    with pytest.raises(ValueError, match="expected Linear"):
        gan.to_torch(dlcourse.nn.Sequential(dlcourse.nn.Softmax()))


def test_step_rejects_bad_batches():
    G, D = gan.make_generator(2, 4), gan.make_discriminator(2, 4)
    opt = SGD(D.parameters(), lr=0.1)
    with pytest.raises(ValueError, match=r"real: expected a non-empty batch of shape \(N, 2\), got \(5, 3\)"):
        gan.discriminator_step(G, D, np.zeros((5, 3)), np.zeros((5, 2)), opt)
    with pytest.raises(ValueError, match=r"z: expected a non-empty batch of shape \(N, 2\), got \(0, 2\)"):
        gan.generator_step(G, D, np.zeros((0, 2)), opt)
    with pytest.raises(ValueError, match="generator_loss must be one of"):
        gan.generator_step(G, D, np.zeros((3, 2)), opt, "minimax")
    with pytest.raises(ValueError, match="as many noise batches"):
        gan.gan_step(G, D, opt, opt, [np.zeros((3, 2))], [], np.zeros((3, 2)))


# ---------------------------------------------------------------------------------------
# Toy distributions and mode coverage
# ---------------------------------------------------------------------------------------


def test_ring_of_gaussians_statistics():
    x = toy2d.ring_of_gaussians(40_000, n_modes=8, radius=2.0, std=0.05, rng=0)
    assert x.shape == (40_000, 2)
    centers = toy2d.ring_centers(8, 2.0)
    nearest = ((x[:, None] - centers[None]) ** 2).sum(-1).argmin(1)
    np.testing.assert_allclose(np.bincount(nearest) / len(x), 1 / 8, atol=0.01)
    resid = x - centers[nearest]
    np.testing.assert_allclose(resid.std(axis=0), 0.05, rtol=0.03)
    assert np.array_equal(x, toy2d.ring_of_gaussians(40_000, rng=0))
    # the density integrates to 1 on a fine grid
    xs = np.linspace(-2.6, 2.6, 801)
    xx, yy = np.meshgrid(xs, xs)
    dens = toy2d.ring_density(np.c_[xx.ravel(), yy.ravel()])
    assert dens.sum() * (xs[1] - xs[0]) ** 2 == pytest.approx(1.0, abs=1e-3)


@pytest.mark.parametrize("name", toy2d.DISTRIBUTIONS)
def test_sampler_is_seeded_and_typed(name):
    a, b = toy2d.ToySampler(name, seed=3), toy2d.ToySampler(name, seed=3)
    x = a(500)
    assert x.shape == (500, 2) and x.dtype == np.float32 and np.isfinite(x).all()
    assert np.array_equal(x, b.sample(500))
    assert not np.array_equal(a(500), x)  # the next batch is a new one
    assert np.abs(x).max() < 3.0  # fits the plotting box of the chapter
    assert toy2d.ToySampler(name, dtype=np.float64)(4).dtype == np.float64


def test_toy_distributions_reject_bad_arguments():
    with pytest.raises(ValueError, match="expected a distribution in"):
        toy2d.ToySampler("swissroll")
    with pytest.raises(ValueError, match="positive number of samples"):
        toy2d.spiral(0)
    with pytest.raises(ValueError, match="std > 0"):
        toy2d.ring_of_gaussians(5, std=0)
    with pytest.raises(ValueError, match=r"points of shape \(m, 2\)"):
        toy2d.ring_density(np.zeros(3))


def test_mode_coverage_counts_modes():
    s = toy2d.ToySampler("ring", seed=0, std=0.05)
    perfect = gan.mode_coverage(s(20_000), s.centers, s.std)
    assert perfect.n_covered == 8 and perfect.n_modes == 8
    assert perfect.high_quality == pytest.approx(1 - np.exp(-4.5), abs=0.005)  # P(|e| < 3 sigma) in 2-D
    np.testing.assert_allclose(perfect.fractions, perfect.high_quality / 8, atol=0.01)
    assert "8/8 modes covered" in str(perfect)
    # three modes only
    rng = np.random.default_rng(1)
    three = s.centers[rng.integers(0, 3, 5000)] + 0.05 * rng.standard_normal((5000, 2))
    cov = gan.mode_coverage(three, s.centers, 0.05)
    assert cov.n_covered == 3 and cov.fractions[3:].sum() == 0
    # everything collapsed onto the origin (between the modes): nothing covered, no good samples
    cov = gan.mode_coverage(np.zeros((100, 2)), s.centers, 0.05)
    assert cov.n_covered == 0 and cov.high_quality == 0
    # the threshold: 4% of the samples on a mode is not enough, 6% is
    pts = np.r_[np.repeat(s.centers[:1], 4, 0), np.repeat(s.centers[1:2], 6, 0), np.full((90, 2), 10.0)]
    cov = gan.mode_coverage(pts, s.centers, 0.05)
    assert cov.n_covered == 1 and cov.fractions[0] == pytest.approx(0.04) and cov.fractions[1] == pytest.approx(0.06)
    # a sample just outside 3 sigma does not count
    cov = gan.mode_coverage(s.centers[:1] + [[0.151, 0.0]], s.centers, 0.05, min_fraction=1.0)
    assert cov.n_covered == 0


def test_mode_coverage_rejects_bad_input():
    c = toy2d.ring_centers()
    with pytest.raises(ValueError, match="NaN"):
        gan.mode_coverage(np.full((3, 2), np.nan), c, 0.05)
    with pytest.raises(ValueError, match="same d"):
        gan.mode_coverage(np.zeros((3, 3)), c, 0.05)
    with pytest.raises(ValueError, match="std > 0"):
        gan.mode_coverage(np.zeros((3, 2)), c, 0.0)


# ---------------------------------------------------------------------------------------
# Training loop
# ---------------------------------------------------------------------------------------


def test_train_gan_records_history_and_learns():
    dlcourse.manual_seed(0)
    G, D = gan.make_generator(2, 32), gan.make_discriminator(2, 32)
    s = toy2d.ToySampler("ring", seed=0)
    before = gan.mode_coverage(gan.sample_generator(G, 1000), s.centers, s.std)
    h = gan.train_gan(G, D, Adam(G.parameters(), lr=2e-3, betas=(0.5, 0.999)),
                      Adam(D.parameters(), lr=2e-3, betas=(0.5, 0.999)), s, num_steps=400, batch_size=128,
                      d_steps=2, snapshot_steps=(0, 200, 400), n_snapshot_samples=300, surface_steps=20)
    assert len(h.loss_D) == len(h.loss_G) == len(h.D_real) == len(h.D_fake) == 400
    assert [snap.step for snap in h.snapshots] == [0, 200, 400]
    assert h.snapshots[0].samples.shape == (300, 2) and h.snapshots[0].surface.shape == (20, 20)
    assert h.grid[0].shape == (20, 20) and h.seconds > 0
    assert not np.array_equal(h.snapshots[0].samples, h.snapshots[-1].samples)
    after = gan.mode_coverage(gan.sample_generator(G, 1000), s.centers, s.std)
    # an untrained G puts its samples near the origin; 400 steps move a good share onto the ring
    assert before.high_quality < 0.05 and after.high_quality > before.high_quality + 0.1
    assert all(np.isfinite(h.loss_D)) and 0 < np.mean(h.D_real) < 1


def test_train_gan_steps_the_lr_schedulers():
    from dlcourse.optim.lr_scheduler import LinearLR

    G, D = gan.make_generator(2, 8, seed=0), gan.make_discriminator(2, 8, seed=1)
    opt_G, opt_D = Adam(G.parameters(), lr=1e-3), Adam(D.parameters(), lr=2e-3)
    scheds = [LinearLR(o, start_factor=1.0, end_factor=0.1, total_iters=10) for o in (opt_G, opt_D)]
    gan.train_gan(G, D, opt_G, opt_D, toy2d.ToySampler("ring"), 6, batch_size=8, lr_schedulers=scheds)
    assert opt_G.param_groups[0]["lr"] == pytest.approx(1e-3 * (1 - 0.9 * 6 / 10))
    assert opt_D.param_groups[0]["lr"] == pytest.approx(2e-3 * (1 - 0.9 * 6 / 10))


class _Poison:
    """An 'optimizer' that writes NaN into the weights: the loop must stop and say where."""

    def __init__(self, params):
        self.params = list(params)

    def zero_grad(self):
        pass

    def step(self):
        for p in self.params:
            p.data[...] = np.nan


def test_train_gan_reports_divergence():
    G, D = gan.make_generator(2, 8), gan.make_discriminator(2, 8)
    with pytest.raises(NonFiniteLossError, match="diverged at step 1 of 5"):
        gan.train_gan(G, D, SGD(G.parameters(), lr=0.1), _Poison(D.parameters()), toy2d.ToySampler("ring"), 5)
    with pytest.raises(ValueError, match="d_steps >= 1"):
        gan.train_gan(G, D, None, None, toy2d.ToySampler("ring"), 5, d_steps=0)
    with pytest.raises(ValueError, match=r"on_divergence must be one of \('raise', 'stop'\), got 'warn'"):
        gan.train_gan(G, D, None, None, toy2d.ToySampler("ring"), 5, on_divergence="warn")


def test_train_gan_shares_the_divergence_rule_and_policy():
    """A finite blow-up counts (the package's one rule), and on_divergence='stop' reports the step."""
    G, D = gan.make_generator(2, 16, seed=0), gan.make_discriminator(2, 16, seed=1)
    sampler = toy2d.ToySampler("ring")
    with pytest.raises(TrainingDivergedError, match=r"GAN training diverged at step \d+ of 50 \(L_\w = the loss"):
        gan.train_gan(G, D, SGD(G.parameters(), lr=50.0), SGD(D.parameters(), lr=50.0), sampler, 50)
    G, D = gan.make_generator(2, 16, seed=0), gan.make_discriminator(2, 16, seed=1)
    hist = gan.train_gan(G, D, SGD(G.parameters(), lr=50.0), SGD(D.parameters(), lr=50.0), sampler, 50,
                         on_divergence="stop")
    assert hist.diverged_at is not None and len(hist.loss_D) == hist.diverged_at - 1
    G, D = gan.make_generator(2, 16, seed=0), gan.make_discriminator(2, 16, seed=1)
    hist = gan.train_gan(G, D, SGD(G.parameters(), lr=0.01), SGD(D.parameters(), lr=0.01), sampler, 20,
                         on_divergence="stop")
    assert hist.diverged_at is None and len(hist.loss_D) == 20


def test_sample_generator_and_surface():
    G, D = gan.make_generator(4, 8), gan.make_discriminator(2, 8)
    x = gan.sample_generator(G, 10, seed=1)
    assert x.shape == (10, 2) and np.array_equal(x, gan.sample_generator(G, 10, seed=1))
    xx, yy, prob = gan.discriminator_surface(D, lim=2.0, steps=7)
    assert xx.shape == yy.shape == prob.shape == (7, 7) and ((prob > 0) & (prob < 1)).all()
    assert isinstance(G[0], Linear)


# ---------------------------------------------------------------------------------------
# Widget and exercises
# ---------------------------------------------------------------------------------------


def test_gan_playground_retrains_and_redraws():
    from dlcourse.course.ch06_gan.gan_playground import GANPlayground

    w = GANPlayground(num_steps=60)
    assert w.n_updates == 1
    text = w.readout.value
    loss_line = w.axes[1].lines[0].get_ydata().copy()
    w.controls["d_steps"].value = 3
    assert w.n_updates == 2 and w.readout.value != text
    assert "modes covered" in w.readout.value
    assert not np.array_equal(loss_line, w.axes[1].lines[0].get_ydata())
    w.controls["lr_G"].value = 1e-2  # FloatLogSlider: the value itself (its min/max are exponents)
    assert w.n_updates == 3 and w.last_settings["lr_G"] == pytest.approx(1e-2)
    assert w.last_history is not None and len(w.last_history.loss_D) == 60


def test_ch6_exercises_reference_passes_and_wrong_fails():
    from dlcourse.course.checker import REGISTRY, check

    names = [n for n in REGISTRY if n.startswith("ch6.")]
    assert len(names) >= 3
    for name in names:
        ex = REGISTRY[name]
        assert check(name, ex.reference, verbose=False), name
        assert ex.wrong is not None and not check(name, ex.wrong, verbose=False), name
