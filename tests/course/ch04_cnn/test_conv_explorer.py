"""Chapter 4: the convolution explorer widget (driven through its controls) and the shapes data set."""

import numpy as np
import pytest

from dlcourse.course.ch04_cnn.conv_explorer import CUSTOM, KERNELS, ConvExplorer, sample_image
from dlcourse.data.shapes import SHAPE_NAMES, draw_shape, make_shapes
from dlcourse.nn import functional as F


def _image_data(ax):
    return np.asarray(ax.get_images()[0].get_array(), dtype=float)


def test_stride_and_padding_change_the_output_shape_and_readout():
    w = ConvExplorer(image="circle", size=20)
    assert w.output_shape == (18, 18) and "18x18" in w.readout.value
    n = w.n_updates
    w.controls["padding"].value = 1
    assert w.n_updates == n + 1
    assert w.output_shape == (20, 20) and "= 20" in w.readout.value
    w.controls["stride"].value = 2
    assert w.output_shape == (10, 10) and "floor((20 + 2·1 - 3) / 2) + 1 = 10" in w.readout.value
    assert _image_data(w.axes[2]).shape == (10, 10)
    assert _image_data(w.axes[0]).shape == (22, 22)  # the input is shown with its padding


def test_choosing_a_kernel_sets_the_nine_values_and_redraws_once():
    w = ConvExplorer(kernel="identity")
    identity_out = _image_data(w.axes[2]).copy()
    n = w.n_updates
    w.controls["kernel"].value = "box blur"
    assert w.n_updates == n + 1  # one redraw, not ten
    np.testing.assert_allclose(w.kernel_values(), np.full((3, 3), 1 / 9))
    blurred = _image_data(w.axes[2])
    assert not np.allclose(blurred, identity_out)
    expected = F.conv2d(sample_image(w.controls["image"].value, w.size)[None, None], w.kernel_values()[None, None])
    np.testing.assert_allclose(w.output_map, expected[0, 0])


def test_editing_a_value_switches_to_custom_and_changes_the_output():
    w = ConvExplorer(kernel="identity")
    before = w.output_map.copy()
    w.controls["k00"].value = 2.0
    assert w.controls["kernel"].value == CUSTOM
    assert w.kernel_values()[0, 0] == 2.0
    assert not np.allclose(w.output_map, before)
    w.controls["image"].value = "checkerboard + gradient"
    assert w.controls["kernel"].value == CUSTOM and w.kernel_values()[0, 0] == 2.0


@pytest.mark.parametrize("name", list(KERNELS))
def test_every_named_kernel_draws(name):
    w = ConvExplorer(kernel=name)
    assert np.isfinite(w.output_map).all()
    assert "✓" in w.readout.value


def test_make_shapes_is_balanced_seeded_and_in_range():
    X, y = make_shapes(200, size=28, seed=3)
    assert X.shape == (200, 1, 28, 28) and X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() >= 0 and X.max() <= 1
    assert np.bincount(y).tolist() == [50] * 4
    X2, y2 = make_shapes(200, size=28, seed=3)
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)
    assert not np.array_equal(X, make_shapes(200, size=28, seed=4)[0])
    # the classes differ in what is drawn: mean images of circles and bars are not the same
    means = [X[y == k, 0].mean(axis=0) for k in range(4)]
    assert min(np.abs(means[a] - means[b]).max() for a in range(4) for b in range(a + 1, 4)) > 0.05


def test_draw_shape_and_errors():
    for name in SHAPE_NAMES:
        img = draw_shape(name, size=24)
        assert img.shape == (24, 24) and 0.03 < img.mean() < 0.5
    with pytest.raises(ValueError, match="unknown class 'star'"):
        make_shapes(10, classes=("bar", "star"))
    with pytest.raises(ValueError, match="size >= 8"):
        make_shapes(10, size=4)
