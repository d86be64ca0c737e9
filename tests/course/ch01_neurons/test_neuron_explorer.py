"""Chapter 1's neuron explorer, driven by setting control values (observers fire synchronously)."""

import numpy as np

from dlcourse.course.ch01_neurons.neuron_explorer import NeuronExplorer


def _line_data(ax):
    return [line.get_ydata().copy() for line in ax.get_lines()]


def test_neuron_explorer_redraws_on_bias_change():
    w = NeuronExplorer()
    before_lines, before_text, n = _line_data(w.axes[0]), w.readout.value, w.n_updates
    w.controls["b"].value = 1.5
    assert w.n_updates == n + 1
    assert w.readout.value != before_text and "b = 1.5" in w.readout.value
    after = _line_data(w.axes[0])
    assert not np.allclose(before_lines[0], after[0])  # the boundary line moved


def test_neuron_explorer_activation_choice_changes_curve():
    w = NeuronExplorer()
    sig = _line_data(w.axes[1])[0]
    w.controls["activation"].value = "relu"
    relu = _line_data(w.axes[1])[0]
    assert relu.min() == 0 and not np.allclose(sig, relu)
