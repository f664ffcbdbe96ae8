"""Heatmaps for the HTML report: colour maps and a minimal PNG encoder, NumPy and zlib only.

The report embeds each map as a ``data:`` URI so that ``report.html`` stays one self-contained file; no plotting
library is needed (or installed) for it.

* ``colorize(a, "sequential")``: a viridis approximation, low values dark purple, high values yellow;
* ``colorize(a, "diverging")``: blue for negative, white for 0, red for positive, symmetric about 0;
* NaN and ±inf are ``NONFINITE`` (magenta) in both, a colour neither map contains.
"""

from __future__ import annotations

import base64
import struct
import zlib

import numpy as np

NONFINITE = (255, 0, 255)
# matplotlib's viridis sampled at t = 0, 1/8, ..., 1: perceptually uniform and readable in greyscale.
VIRIDIS = (
    (68, 1, 84),
    (71, 44, 122),
    (59, 81, 139),
    (44, 113, 142),
    (33, 145, 140),
    (39, 173, 129),
    (92, 200, 99),
    (170, 220, 50),
    (253, 231, 37),
)
# ColorBrewer's RdBu reversed: blue below 0, near-white at 0, red above.
DIVERGING = (
    (5, 48, 97),
    (33, 102, 172),
    (67, 147, 195),
    (146, 197, 222),
    (247, 247, 247),
    (244, 165, 130),
    (214, 96, 77),
    (178, 24, 43),
    (103, 0, 31),
)
KINDS = {"sequential": VIRIDIS, "diverging": DIVERGING}


def interpolate(anchors, t: np.ndarray) -> np.ndarray:
    """Colours for positions ``t`` in [0, 1] (any shape) by linear interpolation between evenly spaced anchors."""
    table = np.asarray(anchors, dtype=np.float64)
    pos = np.clip(np.asarray(t, dtype=np.float64), 0.0, 1.0) * (len(table) - 1)
    lo = np.minimum(np.floor(pos).astype(int), len(table) - 2)
    frac = (pos - lo)[..., None]
    return np.rint(table[lo] * (1 - frac) + table[lo + 1] * frac).astype(np.uint8)


def value_range(*arrays: np.ndarray) -> tuple[float, float] | None:
    """(min, max) of the finite values of all ``arrays``; None when there are none."""
    finite = [np.asarray(a, dtype=np.float64)[np.isfinite(a)] for a in arrays]
    finite = [f for f in finite if f.size]
    if not finite:
        return None
    return float(min(f.min() for f in finite)), float(max(f.max() for f in finite))


def positions(a: np.ndarray, kind: str, vmin: float | None = None, vmax: float | None = None) -> np.ndarray:
    """Where each value falls on the colour map, in [0, 1] (non-finite values: NaN).

    Sequential maps span [vmin, vmax] (default: the array's finite range); diverging maps span [-m, m] with
    m = max(|vmin|, |vmax|), so that 0 is always the centre colour. A constant array sits in the middle.
    """
    a = np.asarray(a, dtype=np.float64)
    finite = np.isfinite(a)
    rng = value_range(a) or (0.0, 0.0)
    lo = rng[0] if vmin is None else vmin
    hi = rng[1] if vmax is None else vmax
    with np.errstate(invalid="ignore", divide="ignore"):
        if kind == "diverging":
            m = max(abs(lo), abs(hi))
            t = np.full(a.shape, 0.5) if m == 0 else 0.5 + 0.5 * a / m
        elif kind == "sequential":
            t = np.full(a.shape, 0.5) if hi <= lo else (a - lo) / (hi - lo)
        else:
            raise ValueError(f"unknown colour map kind {kind!r}: use one of {sorted(KINDS)}")
    return np.where(finite, np.clip(t, 0.0, 1.0), np.nan)


def colorize(
    a_2d: np.ndarray, kind: str = "sequential", vmin: float | None = None, vmax: float | None = None
) -> np.ndarray:
    """An H×W array as H×W×3 uint8 RGB on the ``kind`` colour map (see ``positions``); NaN/inf are NONFINITE."""
    a = np.asarray(a_2d, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"colorize takes a 2-D array, got shape {list(a.shape)}")
    t = positions(a, kind, vmin, vmax)
    rgb = interpolate(KINDS[kind], np.nan_to_num(t, nan=0.0))
    rgb[np.isnan(t)] = NONFINITE
    return rgb


def gradient(kind: str, width: int = 128, height: int = 10) -> np.ndarray:
    """A horizontal colour bar of the ``kind`` map, low to high: the legend's image."""
    row = interpolate(KINDS[kind], np.linspace(0.0, 1.0, width))
    return np.ascontiguousarray(np.broadcast_to(row, (height, width, 3)))


def subsample(a_2d: np.ndarray, max_side: int) -> tuple[np.ndarray, int]:
    """Every k-th pixel so that neither side exceeds ``max_side`` (k = 1 for small maps): keeps reports small."""
    a = np.asarray(a_2d)
    step = max(1, -(-max(a.shape) // max_side))
    return a[::step, ::step], step


def _chunk(tag: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)


def png(rgb: np.ndarray) -> bytes:
    """An H×W×3 uint8 array as PNG bytes (no filtering: enough for small maps).

    An image of at most 256 colours (every colour-mapped heatmap) is written as an indexed-colour PNG, a third
    of the size of 8-bit truecolour, which any other image is written as.
    """
    rgb = np.asarray(rgb)
    if rgb.ndim != 3 or rgb.shape[2] != 3 or rgb.dtype != np.uint8:
        raise ValueError(f"png takes an H×W×3 uint8 array, got {rgb.dtype} {list(rgb.shape)}")
    height, width = rgb.shape[:2]
    if height == 0 or width == 0:
        raise ValueError("png: an image needs at least one pixel")
    keys = (rgb[..., 0].astype(np.uint32) << 16) | (rgb[..., 1].astype(np.uint32) << 8) | rgb[..., 2]
    colours, index = np.unique(keys, return_inverse=True)
    if len(colours) <= 256:
        palette = np.stack([colours >> 16, (colours >> 8) & 255, colours & 255], axis=1).astype(np.uint8)
        pixels, colour_type, extra = (
            index.reshape(height, width).astype(np.uint8),
            3,
            _chunk(b"PLTE", palette.tobytes()),
        )
    else:
        pixels, colour_type, extra = rgb.reshape(height, width * 3), 2, b""
    rows = np.concatenate([np.zeros((height, 1), np.uint8), pixels], axis=1)  # filter type 0 on every row
    header = struct.pack(">IIBBBBB", width, height, 8, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + extra
        + _chunk(b"IDAT", zlib.compress(rows.tobytes()))
        + _chunk(b"IEND", b"")
    )


def data_uri(png_bytes: bytes) -> str:
    """PNG bytes as a ``data:image/png;base64,...`` URI for an <img src>."""
    return "data:image/png;base64," + base64.b64encode(png_bytes).decode("ascii")
