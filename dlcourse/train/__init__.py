"""The training loop, written once: ``fit`` for dlcourse models, ``fit_torch`` for PyTorch twins.

Both run the same loop (:func:`dlcourse.train.loop.run`): per mini-batch forward, loss, backward, update, with an
optional learning-rate scheduler (per batch or per epoch), data augmentation, validation after
each epoch, early stopping on a validation metric, a tqdm progress bar and two hooks,
``on_step(step, loss)`` and ``on_epoch(epoch, history)``, either of which stops training by
returning True. Both return a :class:`History` (loss, accuracy and seconds per epoch), so curves
and tables of the two libraries are drawn by the same code. Every training loop of the package
runs through here: the chapter-3 toy training, the learning-rate range test, the widgets.
Both take the same keyword arguments, collected once per run into a :class:`TrainOptions`.

One job per module: ``options.py`` (the options and the data, checked before training), ``divergence.py``
(the rule, the guard and the policy), ``loop.py`` (the loop, :class:`History`, :class:`EarlyStopping`),
``trainers.py`` (``fit`` and ``fit_torch``: one step of each library). Scoring a model is
:mod:`dlcourse.metrics` (re-exported here: ``from dlcourse.train import evaluate`` works as before).

Divergence has one rule, :class:`Divergence`, and one policy switch, ``on_divergence``, applied in one
place, :class:`~dlcourse.train.divergence.DivergenceGuard` (chapter 6's GAN loop uses it too):

* a step's training loss has diverged when it is NaN or infinite, or when it is above
  ``max(limit, factor * first_loss)`` (defaults ``limit=1e4``, ``factor=100``; ``first_loss`` is
  the loss of the first step). A finite blow-up counts: SGD at lr 1e3 gives losses of 1e7 that
  later fall back to a few hundred, a run that learned nothing. For cross-entropy, which starts
  near ln(C), the bound is 1e4 (logits thousands apart); a loss that starts large (an MSE on
  unscaled targets) gets a proportionally larger bound.
* ``on_divergence='raise'`` (the default) raises :class:`TrainingDivergedError`, whose message
  and ``.step`` say where; ``'stop'`` ends training and records the step in
  ``history.diverged_at`` (the widgets draw "diverged at step k" from it).

NaN or inf in the *data* is not divergence: ``fit`` checks the arrays once, up front, and raises a
``ValueError`` naming the array and the first bad index.

A run that ends in an exception keeps what it learned: the exception carries the History as
``err.history``, and with early stopping the best epoch's weights are restored before it propagates.

Evaluation is done right: :func:`evaluate` / :func:`evaluate_torch` switch the model to eval
mode (dropout off, batch-norm running statistics), compute no gradient and update nothing,
and restore the previous mode. The test set is only ever passed to these.
"""

from ..metrics import (
    accuracy,
    confusion_matrix,
    evaluate,
    evaluate_torch,
    predict_logits,
    predict_logits_torch,
    predict_proba,
)
from .divergence import DIVERGENCE, ON_DIVERGENCE, Divergence, TrainingDivergedError
from .loop import EarlyStopping, History
from .options import TrainOptions, check_data_finite
from .trainers import fit, fit_torch

__all__ = ["fit", "fit_torch", "TrainOptions", "History", "EarlyStopping", "Divergence", "DIVERGENCE", "ON_DIVERGENCE",
           "TrainingDivergedError", "check_data_finite", "accuracy", "confusion_matrix", "evaluate", "evaluate_torch",
           "predict_logits", "predict_logits_torch", "predict_proba"]
