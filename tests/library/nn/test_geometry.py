"""``dlcourse.nn.geometry``: the window arithmetic shared by convolution and pooling."""

import numpy as np
import pytest
import torch

from dlcourse.nn import geometry as geo


def test_pair_takes_an_int_or_a_pair_and_names_the_argument_otherwise():
    assert geo.pair(3) == (3, 3) and geo.pair((2, 5)) == (2, 5) and geo.pair(np.int64(4)) == (4, 4)
    with pytest.raises(ValueError, match=r"Conv2d stride: expected an int or a pair of ints, got \(1, 2, 3\)"):
        geo.pair((1, 2, 3), "Conv2d stride")
    with pytest.raises(ValueError, match="expected an int or a pair of ints, got None"):
        geo.pair(None)


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("k, d", [(3, 1), (4, 1), (3, 2), (2, 3)])
def test_same_padding_matches_torch_output_size(k, d):
    top, bottom, left, right = geo.resolve_padding("same", (k, k), (d, d), (1, 1), "conv2d")
    assert top + bottom == d * (k - 1) and bottom - top in (0, 1)  # the extra one goes bottom/right, as torch
    x = torch.zeros(1, 1, 9, 9)
    out = torch.nn.functional.conv2d(x, torch.zeros(1, 1, k, k), padding="same", dilation=d)
    assert geo.output_shape(9, 9, (k, k), (1, 1), (top, bottom, left, right), (d, d), "conv2d") == out.shape[2:]


def test_resolve_padding_refuses_what_torch_refuses():
    with pytest.raises(ValueError, match="padding='same' needs stride 1"):
        geo.resolve_padding("same", (3, 3), (1, 1), (2, 2), "Conv2d")
    with pytest.raises(ValueError, match="expected non-negative padding"):
        geo.resolve_padding(-1, (3, 3), (1, 1), (1, 1), "Conv2d")
    with pytest.raises(ValueError, match="padding must be an int, a pair, 'valid' or 'same', got 'full'"):
        geo.resolve_padding("full", (3, 3), (1, 1), (1, 1), "Conv2d")


def test_output_shape_names_the_sizes_when_the_input_is_too_small():
    with pytest.raises(ValueError, match=r"input of spatial size 2x2 \(padded to 2x2\) is smaller than the kernel's "
                                         r"extent 3x3"):
        geo.output_shape(2, 2, (3, 3), (1, 1), (0, 0, 0, 0), (1, 1), "conv2d")


@pytest.mark.parametrize("size, k, s, p, d", [(7, 3, 1, 1, 1), (8, 3, 2, 1, 1), (9, 2, 3, 0, 2), (5, 3, 2, 2, 1)])
def test_kernel_offsets_cover_exactly_the_positions_inside_the_image(size, k, s, p, d):
    out = geo.conv_output_size(size, k, s, p, d)
    assert out == torch.nn.functional.conv2d(torch.zeros(1, 1, size, size), torch.zeros(1, 1, k, k), stride=s,
                                             padding=p, dilation=d).shape[-1]
    offsets = geo.kernel_offsets((k, k), (s, s), (p, p, p, p), (d, d), (size, size), (out, out))
    assert [(o.i, o.j) for o in offsets] == [(i, j) for i in range(k) for j in range(k)]
    for o in offsets:
        rows = np.arange(out)[o.out_rows] * s + o.i * d - p  # input rows those outputs read
        assert list(rows) == list(range(size)[o.in_rows])
        inside = [r for r in np.arange(out) * s + o.i * d - p if 0 <= r < size]
        assert len(inside) == len(rows)  # every output that reads inside the image is listed, none in the padding
        assert o.empty == (len(rows) == 0 or len(range(size)[o.in_cols]) == 0)
