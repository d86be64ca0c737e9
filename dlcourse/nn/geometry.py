"""Window geometry shared by convolution and pooling: argument pairs, padding, output sizes, offsets.

A 2-D window operation (``conv2d``, ``max_pool2d``, ``avg_pool2d``) slides a kh x kw kernel over an
(H, W) input with a stride s, a dilation d and padding (top, bottom, left, right). Along one axis

    out = floor((size + pad_before + pad_after - d*(k - 1) - 1) / s) + 1

and output position p of kernel row i reads input row ``p*s + i*d - pad_before``. The fast code
paths never loop over pixels: they loop over the kh*kw kernel offsets, and for each offset
:func:`kernel_offsets` gives the output positions whose input lies inside the image (not in the
padding) as two pairs of slices, so every offset is one strided copy or add.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np


def pair(value, name: str = "argument") -> tuple[int, int]:
    """``3 -> (3, 3)``, ``(3, 5) -> (3, 5)``; anything else is a ValueError naming ``name``."""
    if isinstance(value, (int, np.integer)):
        return int(value), int(value)
    try:
        result = tuple(int(v) for v in value)
    except TypeError as err:
        raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}") from err
    if len(result) != 2:
        raise ValueError(f"{name}: expected an int or a pair of ints, got {value!r}")
    return result


def check_positive(values, name: str, who: str) -> None:
    """ValueError unless every entry of ``values`` (a pair) is positive."""
    if min(values) <= 0:
        raise ValueError(f"{who}: expected positive {name}, got {values}")


def conv_output_size(size: int, kernel_size: int, stride: int = 1, padding: int = 0, dilation: int = 1,
                     ceil_mode: bool = False) -> int:
    """Output length of a convolution or pooling along one axis:

    ``floor((size + 2*padding - dilation*(kernel_size - 1) - 1) / stride) + 1``

    (``ceil`` instead of ``floor`` with ``ceil_mode``, as pooling allows; a window may then
    start in the right padding only if it starts before the input ends, as in PyTorch).
    ``padding`` may be a pair (before, after) for asymmetric padding.
    """
    before, after = (padding, padding) if np.ndim(padding) == 0 else padding
    span = size + before + after - dilation * (kernel_size - 1) - 1
    if not ceil_mode:
        return max(span // stride + 1, 0)
    out = (span + stride - 1) // stride + 1
    if (out - 1) * stride >= size + before:
        out -= 1
    return max(out, 0)


def resolve_padding(padding, kernel_size, dilation, stride, who: str) -> tuple[int, int, int, int]:
    """Padding as (top, bottom, left, right) from an int, a pair, 'valid' or 'same'."""
    if isinstance(padding, str):
        if padding == "valid":
            return 0, 0, 0, 0
        if padding == "same":
            if tuple(stride) != (1, 1):
                raise ValueError(f"{who}: padding='same' needs stride 1, got stride={stride}")
            pads = []
            for k, d in zip(kernel_size, dilation):
                total = d * (k - 1)
                pads += [total // 2, total - total // 2]  # the extra one goes bottom/right, as in PyTorch
            return tuple(pads)
        raise ValueError(f"{who}: padding must be an int, a pair, 'valid' or 'same', got {padding!r}")
    ph, pw = pair(padding, f"{who} padding")
    if ph < 0 or pw < 0:
        raise ValueError(f"{who}: expected non-negative padding, got {padding!r}")
    return ph, ph, pw, pw


def output_shape(H, W, kernel, stride, pad4, dilation, who, ceil_mode=False) -> tuple[int, int]:
    """(OH, OW), or a ValueError naming the sizes when the input is too small for the kernel."""
    kh, kw = kernel
    eff_h, eff_w = dilation[0] * (kh - 1) + 1, dilation[1] * (kw - 1) + 1
    Hp, Wp = H + pad4[0] + pad4[1], W + pad4[2] + pad4[3]
    OH = conv_output_size(H, kh, stride[0], pad4[0:2], dilation[0], ceil_mode)
    OW = conv_output_size(W, kw, stride[1], pad4[2:4], dilation[1], ceil_mode)
    if OH <= 0 or OW <= 0:
        raise ValueError(f"{who}: input of spatial size {H}x{W} (padded to {Hp}x{Wp}) is smaller than the "
                         f"kernel's extent {eff_h}x{eff_w} (kernel_size={kernel}, dilation={dilation})")
    return OH, OW


def valid_range(offset: int, out_size: int, in_size: int, stride: int) -> tuple[int, int, slice]:
    """Output indices o with 0 <= o*stride + offset < in_size, as (o_start, o_stop, in_slice).

    ``offset`` is ``i*dilation - pad_before`` for kernel row i. The input positions seen by
    those outputs are ``in_slice`` (a strided slice), so a copy or add per kernel offset
    never touches the padding.
    """
    o0 = 0 if offset >= 0 else (-offset + stride - 1) // stride
    o1 = min(out_size, (in_size - 1 - offset) // stride + 1) if in_size - 1 - offset >= 0 else 0
    if o1 <= o0:
        return o0, o0, slice(0, 0)
    start = o0 * stride + offset
    return o0, o1, slice(start, start + (o1 - o0 - 1) * stride + 1, stride)


class Offset(NamedTuple):
    """One kernel offset (i, j): the output rows/cols that see an input pixel there, and those input rows/cols."""

    i: int
    j: int
    out_rows: slice
    out_cols: slice
    in_rows: slice
    in_cols: slice

    @property
    def empty(self) -> bool:
        """True when every output sees padding at this offset (nothing to copy or add)."""
        return self.out_rows.stop <= self.out_rows.start or self.out_cols.stop <= self.out_cols.start

    def covers(self, out_hw) -> bool:
        """True when every output position sees an input pixel at this offset."""
        return (self.out_rows.stop - self.out_rows.start == out_hw[0]
                and self.out_cols.stop - self.out_cols.start == out_hw[1])


def kernel_offsets(kernel, stride, pad4, dilation, in_hw, out_hw) -> list[Offset]:
    """For every kernel offset (i, j), row-major: an :class:`Offset` with its output and input slices."""
    result = []
    for i in range(kernel[0]):
        r0, r1, rows = valid_range(i * dilation[0] - pad4[0], out_hw[0], in_hw[0], stride[0])
        for j in range(kernel[1]):
            c0, c1, cols = valid_range(j * dilation[1] - pad4[2], out_hw[1], in_hw[1], stride[1])
            result.append(Offset(i, j, slice(r0, r1), slice(c0, c1), rows, cols))
    return result
