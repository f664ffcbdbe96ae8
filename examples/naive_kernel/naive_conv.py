"""A deliberately simple convolution kernel, as a user might write one: the thing the harness checks.

Written from the definition of the ops, with NumPy only (it does not use the harness): NCHW data, OIHW filters
(``[out_channels, in_channels, kh, kw]``, PyTorch's order), and the ``tf.nn`` signatures, so that
``backend.yaml`` can declare it to the harness. Every output pixel is computed by its own small loop iteration:

    out[n, o, y, x] = sum over c, i, j of  x_padded[n, c, y * sh + i * dh, x * sw + j * dw] * w[o, c, i, j]

a cross-correlation (the kernel is not flipped), like TensorFlow's. Padding follows TensorFlow:

* VALID: no padding;
* SAME: ``out = ceil(n / stride)``; total padding ``max(0, (out - 1) * stride + k_eff - n)`` with
  ``k_eff = (k - 1) * dilation + 1``; ``total // 2`` before and the rest (the odd pixel) AFTER, bottom / right;
* explicit: ``[[0, 0], [0, 0], [top, bottom], [left, right]]`` (NCHW order).

It computes in the input's dtype (float32 or float64) and is slow on purpose: clarity over speed.
"""

from __future__ import annotations

import numpy as np


def _spatial(value, name: str) -> tuple[int, int]:
    """strides / dilations in any tf.nn form (int, [v], [vh, vw], or [1, 1, vh, vw] in NCHW order) -> (vh, vw)."""
    if value is None:
        return 1, 1
    if np.ndim(value) == 0:
        return int(value), int(value)
    values = [int(v) for v in value]
    if len(values) == 1:
        return values[0], values[0]
    if len(values) == 2:
        return values[0], values[1]
    if len(values) == 4:
        if values[0] != 1 or values[1] != 1:
            raise ValueError(f"{name}={value!r}: the batch and channel entries must be 1")
        return values[2], values[3]
    raise ValueError(f"{name}={value!r}: expected an int or a list of 1, 2 or 4 ints")


def _same_pads(size: int, k_eff: int, stride: int) -> tuple[int, int]:
    out = -(-size // stride)  # ceil(size / stride)
    total = max(0, (out - 1) * stride + k_eff - size)
    return total // 2, total - total // 2  # TensorFlow: the odd pixel goes after (bottom / right)


def _pads(padding, sizes, k_effs, strides) -> list[tuple[int, int]]:
    """(before, after) for H and W."""
    if padding == "SAME":
        return [_same_pads(n, k, s) for n, k, s in zip(sizes, k_effs, strides)]
    if padding == "VALID":
        return [(0, 0), (0, 0)]
    if isinstance(padding, str):
        raise ValueError(f"padding={padding!r}: expected 'SAME', 'VALID' or 4 [before, after] pairs")
    pairs = [tuple(int(v) for v in pair) for pair in padding]
    if len(pairs) != 4 or pairs[0] != (0, 0) or pairs[1] != (0, 0):
        raise ValueError(f"padding={padding!r}: explicit padding is [[0, 0], [0, 0], [top, bottom], [left, right]]")
    return [pairs[2], pairs[3]]


def _windows(x_shape, k_hw, strides, padding, dilations):
    """The padded input's pads, the output size and the strides / dilations, per spatial axis."""
    (sh, sw), (dh, dw) = _spatial(strides, "strides"), _spatial(dilations, "dilations")
    k_eff = [(k_hw[0] - 1) * dh + 1, (k_hw[1] - 1) * dw + 1]
    pads = _pads(padding, x_shape[2:], k_eff, (sh, sw))
    out = []
    for n, k, s, (before, after) in zip(x_shape[2:], k_eff, (sh, sw), pads):
        padded = n + before + after
        if padding == "SAME":
            out.append((padded - k) // s + 1 if padded >= k else 0)  # ceil(n / s); 0 for an empty input
            continue
        if k > padded:
            raise ValueError(f"the effective kernel ({k}) is larger than the padded input ({padded})")
        out.append((padded - k) // s + 1)
    return pads, out, (sh, sw), (dh, dw)


def conv2d(input, filters, strides, padding, data_format="NCHW", dilations=None):
    """tf.nn.conv2d on NCHW data with an OIHW filter [out_c, in_c / groups, kh, kw]; returns NCHW.

    Grouped, as TensorFlow's Conv2D is, when the input has ``groups`` times the filter's in_c: output channels
    ``[g * out_c / groups, (g + 1) * out_c / groups)`` read input channels ``[g * in_c, (g + 1) * in_c)``.
    """
    if data_format != "NCHW":
        raise ValueError(f"this kernel takes NCHW data only, got data_format={data_format!r}")
    x, w = np.asarray(input), np.asarray(filters)
    per_group = w.shape[1]
    groups = x.shape[1] // per_group if per_group and x.shape[1] % per_group == 0 else 0
    if x.shape[1] != per_group and (not groups or w.shape[0] % groups):
        raise ValueError(f"input has {x.shape[1]} channels but the filter expects {per_group} (or a grouping of them)")
    groups = groups or 1
    per_out = w.shape[0] // groups
    pads, (oh, ow), (sh, sw), (dh, dw) = _windows(x.shape, w.shape[2:], strides, padding, dilations)
    kh, kw = w.shape[2:]
    xp = np.pad(x, [(0, 0), (0, 0), pads[0], pads[1]])
    out = np.zeros((x.shape[0], w.shape[0], oh, ow), dtype=x.dtype)
    for g in range(groups):
        xg, wg = xp[:, g * per_group : (g + 1) * per_group], w[g * per_out : (g + 1) * per_out]
        for y in range(oh):
            for z in range(ow):
                top, left = y * sh, z * sw
                patch = xg[:, :, top : top + (kh - 1) * dh + 1 : dh, left : left + (kw - 1) * dw + 1 : dw]
                out[:, g * per_out : (g + 1) * per_out, y, z] = np.einsum("nchw,ochw->no", patch, wg)
    return out


def depthwise_conv2d(input, filter, strides, padding, data_format="NCHW", dilations=None):
    """tf.nn.depthwise_conv2d on NCHW data with an IMHW filter [in_c, multiplier, kh, kw]; returns NCHW.

    Output channel ``c * multiplier + m`` is input channel c correlated with filter[c, m] (channel-major, as
    TensorFlow orders them).
    """
    if data_format != "NCHW":
        raise ValueError(f"this kernel takes NCHW data only, got data_format={data_format!r}")
    x, w = np.asarray(input), np.asarray(filter)
    channels, multiplier, kh, kw = w.shape
    if x.shape[1] != channels:
        raise ValueError(f"input has {x.shape[1]} channels but the filter expects {channels}")
    pads, (oh, ow), (sh, sw), (dh, dw) = _windows(x.shape, (kh, kw), strides, padding, dilations)
    xp = np.pad(x, [(0, 0), (0, 0), pads[0], pads[1]])
    out = np.zeros((x.shape[0], channels, multiplier, oh, ow), dtype=x.dtype)
    for y in range(oh):
        for z in range(ow):
            top, left = y * sh, z * sw
            patch = xp[:, :, top : top + (kh - 1) * dh + 1 : dh, left : left + (kw - 1) * dw + 1 : dw]  # [N, C, kh, kw]
            out[:, :, :, y, z] = np.einsum("nchw,cmhw->ncm", patch, w)
    return out.reshape(x.shape[0], channels * multiplier, oh, ow)
