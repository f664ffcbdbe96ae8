"""A placeholder kernel (written by ``harness init``): replace it with yours, keeping the signature.

conv2d on NHWC data with an HWIO filter, by the definition, in the input's dtype:

    out[n, y, x, o] = sum over i, j, c of  x_padded[n, y * sh + i * dh, x * sw + j * dw, c] * w[i, j, c, o]
"""

import numpy as np


def _pair(value):
    """strides / dilations as tf.nn takes them (an int, or a list of 1, 2 or 4 values) -> (h, w)."""
    values = [1] if value is None else np.atleast_1d(value).tolist()
    values = values[1:3] if len(values) == 4 else values * 2 if len(values) == 1 else values
    return int(values[0]), int(values[1])


def conv2d(input, filters, strides, padding, data_format="NHWC", dilations=None):
    if data_format != "NHWC":
        raise ValueError(f"this kernel takes NHWC data only, got data_format={data_format!r}")
    x, w = np.asarray(input), np.asarray(filters)
    (sh, sw), (dh, dw) = _pair(strides), _pair(dilations)
    kh, kw = (w.shape[0] - 1) * dh + 1, (w.shape[1] - 1) * dw + 1  # the dilated kernel's extent
    if padding == "SAME":
        out_h, out_w = -(-x.shape[1] // sh), -(-x.shape[2] // sw)
        pad_h = max(0, (out_h - 1) * sh + kh - x.shape[1])
        pad_w = max(0, (out_w - 1) * sw + kw - x.shape[2])
        pads = [(pad_h // 2, pad_h - pad_h // 2), (pad_w // 2, pad_w - pad_w // 2)]  # the odd pixel after
    elif padding == "VALID":
        pads = [(0, 0), (0, 0)]
    elif isinstance(padding, str):
        raise ValueError(f"padding={padding!r}: expected SAME, VALID or [[0, 0], [top, bottom], [left, right], [0, 0]]")
    else:  # explicit, in NHWC order
        pairs = [(int(before), int(after)) for before, after in padding]
        if len(pairs) != 4 or pairs[0] != (0, 0) or pairs[3] != (0, 0):
            raise ValueError(f"padding={padding!r}: explicit padding is [[0, 0], [top, bottom], [left, right], [0, 0]]")
        pads = [pairs[1], pairs[2]]
    xp = np.pad(x, [(0, 0), pads[0], pads[1], (0, 0)])
    out_h, out_w = (xp.shape[1] - kh) // sh + 1, (xp.shape[2] - kw) // sw + 1
    out = np.zeros((x.shape[0], max(out_h, 0), max(out_w, 0), w.shape[3]), dtype=x.dtype)
    for y in range(out.shape[1]):
        for z in range(out.shape[2]):
            patch = xp[:, y * sh : y * sh + kh : dh, z * sw : z * sw + kw : dw, :]  # [N, kh, kw, C]
            out[:, y, z, :] = np.einsum("nhwc,hwco->no", patch, w)
    return out
