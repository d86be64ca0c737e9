"""Chapter 6 widget: the GAN playground.

Sliders for the generator's and the discriminator's learning rates (Adam, log scale) and the
number of discriminator steps per generator step, and a choice of generator loss. Every change
retrains a small NumPy GAN on the ring of 8 Gaussians from the same initial weights and the same
noise (a few hundred steps, about a second), then redraws:

1. the real points, G's samples and D's probability surface D(x) after training,
2. both losses over training, with their values at the game's equilibrium
   (L_D = log 4, L_G = log 2, where D(x) = 1/2 everywhere),
3. D's mean output on real and on generated batches.

The readout gives the mode coverage (:func:`dlcourse.course.ch06_gan.gan.mode_coverage`) and flags the two
failures the chapter teaches to recognise: a discriminator that wins outright (D(G(z)) near 0,
so the generator's gradient carries little information) and mode collapse (G's samples bunched
in a cloud far smaller than the data's spread).
``playground.last_history`` and ``playground.last_settings`` hold the last run.
"""

from __future__ import annotations

import math
import time

import ipywidgets as widgets
import numpy as np

from dlcourse import optim
from dlcourse.course.ch06_gan import gan
from dlcourse.course.widget import InteractiveFigure
from dlcourse.data.toy2d import ToySampler
from dlcourse.i18n import _
from dlcourse.nn.loss import NonFiniteLossError


class GANPlayground(InteractiveFigure):
    """``GANPlayground()`` and display it (leave it last in a cell); drag a slider to retrain."""

    def __init__(self, lr_G: float = 5e-3, lr_D: float = 5e-3, d_steps: int = 1, num_steps: int = 500,
                 batch_size: int = 128, hidden_size: int = 64, latent_dim: int = 2, std: float = 0.1,
                 seed: int = 0):
        self.num_steps, self.batch_size, self.hidden_size = num_steps, batch_size, hidden_size
        self.latent_dim, self.std, self.seed = latent_dim, std, seed
        self.real = ToySampler("ring", seed=seed + 1, std=std)(1000)
        self.last_history: gan.GANHistory | None = None
        self.last_settings: dict = {}
        self.last_coverage: gan.Coverage | None = None
        slider = dict(continuous_update=False, style={"description_width": "initial"})
        controls = {
            "lr_G": widgets.FloatLogSlider(value=lr_G, base=10, min=-5, max=-1, step=0.1, readout_format=".1e",
                                           description=_("generator lr"), **slider),
            "lr_D": widgets.FloatLogSlider(value=lr_D, base=10, min=-5, max=-1, step=0.1, readout_format=".1e",
                                           description=_("discriminator lr"), **slider),
            "d_steps": widgets.IntSlider(value=d_steps, min=1, max=10, description=_("D steps per G step"), **slider),
            "generator_loss": widgets.Dropdown(options=list(gan.GENERATOR_LOSSES), value="non_saturating",
                                               description=_("generator loss")),
        }
        super().__init__(controls, nrows=1, ncols=3, figsize=(12, 3.9), title=_("The GAN playground"))
        # Lay the figure out once, then freeze it: re-measuring the layout on every redraw is slow.
        engine = self.fig.get_layout_engine()
        if engine is not None:
            engine.execute(self.fig)
            self.fig.set_layout_engine("none")

    def train(self, lr_G, lr_D, d_steps, generator_loss):
        """Train a fresh GAN (same initial weights and noise every time) and return its history."""
        G = gan.make_generator(self.latent_dim, self.hidden_size, seed=self.seed)
        D = gan.make_discriminator(2, self.hidden_size, seed=self.seed + 1)
        opt_G = optim.Adam(G.parameters(), lr=lr_G, betas=(0.5, 0.999))
        opt_D = optim.Adam(D.parameters(), lr=lr_D, betas=(0.5, 0.999))
        sampler = ToySampler("ring", seed=self.seed, std=self.std)
        history = gan.train_gan(G, D, opt_G, opt_D, sampler, self.num_steps, self.batch_size, d_steps=d_steps,
                                generator_loss=generator_loss, seed=self.seed, snapshot_steps=(self.num_steps,),
                                n_snapshot_samples=1000, surface_steps=60)
        return history, sampler

    def draw(self, lr_G, lr_D, d_steps, generator_loss):
        t0 = time.perf_counter()
        ax_s, ax_l, ax_d = self.axes
        try:
            history, sampler = self.train(lr_G, lr_D, d_steps, generator_loss)
        except NonFiniteLossError as err:  # a diverged run: say so in the plot and the readout
            self.last_history, self.last_error = None, str(err)
            ax_s.text(0.5, 0.5, _("diverged"), ha="center", va="center", transform=ax_s.transAxes, color="C3")
            return _("training diverged: {error}").format(error=err)
        self.last_error = None
        snap = history.snapshots[-1]
        coverage = gan.mode_coverage(snap.samples, sampler.centers, sampler.std)
        self.last_history, self.last_coverage = history, coverage
        self.last_settings = dict(lr_G=lr_G, lr_D=lr_D, d_steps=d_steps, generator_loss=generator_loss)

        gan.plot_gan_samples(ax_s, self.real, snap.samples, snap.surface, history.grid,
                             title=_("after {steps} steps: {covered}/{modes} modes").format(
                                 steps=self.num_steps, covered=coverage.n_covered, modes=coverage.n_modes))
        steps = np.arange(1, len(history.loss_D) + 1)
        ax_l.plot(steps, history.loss_D, lw=0.8, label="$L_D$")
        ax_l.plot(steps, history.loss_G, lw=0.8, label="$L_G$")
        ax_l.axhline(math.log(4), color="C0", ls="--", lw=0.8)
        ax_l.axhline(math.log(2) if generator_loss == "non_saturating" else -math.log(2), color="C1", ls="--", lw=0.8)
        ax_l.set(xlabel=_("step"), ylabel=_("loss"), title=_("losses (dashed: equilibrium)"))
        ax_l.legend(loc="upper right")
        ax_d.plot(steps, history.D_real, lw=0.8, color="C2", label=_("D(x), real"))
        ax_d.plot(steps, history.D_fake, lw=0.8, color="C3", label=_("D(G(z)), fake"))
        ax_d.axhline(0.5, color="k", ls="--", lw=0.8)
        ax_d.set(xlabel=_("step"), ylim=(0, 1), title=_("discriminator's outputs"))
        ax_d.legend(loc="lower right")

        tail = max(1, len(history.D_fake) // 5)
        d_fake, d_real = float(np.mean(history.D_fake[-tail:])), float(np.mean(history.D_real[-tail:]))
        notes = []
        if d_fake < 0.1 and d_real > 0.9:
            notes.append(_("the discriminator wins outright (D(G(z)) near 0): G's gradient carries little "
                           "information"))
        spread = float(np.linalg.norm(snap.samples.std(axis=0)))
        real_spread = float(np.linalg.norm(self.real.std(axis=0)))
        if spread < 0.3 * real_spread:
            notes.append(_("mode collapse: G's samples bunch up in a small cloud"))
        seconds = time.perf_counter() - t0
        return (_("{coverage}; spread of G's samples {spread:.2f} (the data's {real_spread:.2f}). Last {tail} steps: "
                  "D(x) = {d_real:.2f}, D(G(z)) = {d_fake:.2f}. Trained {steps} steps in {seconds:.1f} s.").format(
            coverage=coverage, spread=spread, real_spread=real_spread, tail=tail, d_real=d_real, d_fake=d_fake,
            steps=self.num_steps, seconds=seconds)
                + "".join(f" ⚠ {n}." for n in notes))

