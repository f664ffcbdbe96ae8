"""Run the C kernel (int8_conv.c) on every int8 conv2d entry of a ``harness export --npz`` directory.

    python examples/int8_kernel/run.py DIR [--bug 1|2]

It compiles the kernel (``cc``), reads each entry's operands and quantization from DIR, calls the kernel through
ctypes and writes its output as DIR/<entry output> (``NAME.out.npy``), for ``harness check-npz DIR`` to check.
Entries it does not handle (other ops, 16x8) are left without output: check-npz lists them as missing.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
INT, I8, I32 = ctypes.c_int, ctypes.POINTER(ctypes.c_int8), ctypes.POINTER(ctypes.c_int32)


def build(bug: int, directory: Path) -> ctypes.CDLL:
    """int8_conv.c as a shared library in ``directory`` (``bug``: 0, or one of its ROUNDING_BUG twins)."""
    library = directory / f"libint8conv{bug}.so"
    command = ["cc", "-O2", "-shared", "-fPIC", f"-DROUNDING_BUG={bug}", str(HERE / "int8_conv.c"), "-o", str(library)]
    subprocess.run(command, check=True)
    lib = ctypes.CDLL(str(library))
    lib.int8_conv2d.argtypes = [I8, *[INT] * 4, I8, *[INT] * 4, I32, *[INT] * 5, INT, INT, I32, I32, INT, INT, I8]
    lib.int8_conv2d.argtypes += [INT, INT]
    lib.int8_conv2d.restype = INT
    return lib


def pointer(array: np.ndarray, kind):
    return array.ctypes.data_as(kind)


def run(lib: ctypes.CDLL, directory: Path, entry: dict) -> np.ndarray:
    arrays = np.load(directory / entry["npz"])
    x_nhwc = np.ascontiguousarray(arrays["input"], np.int8)
    w_ohwi = np.ascontiguousarray(arrays["filter"], np.int8)
    bias = np.ascontiguousarray(arrays["bias"], np.int32)
    q, attrs = entry["quantization"], entry["attrs"]
    multiplier = np.ascontiguousarray(q["multiplier"], np.int32)
    shift = np.ascontiguousarray(q["shift"], np.int32)
    out_nhwc = np.zeros(entry["output_shape"], np.int8)
    status = lib.int8_conv2d(
        pointer(x_nhwc, I8), *x_nhwc.shape,
        pointer(w_ohwi, I8), *w_ohwi.shape,
        pointer(bias, I32), *attrs["strides"], *attrs["dilations"], attrs["padding"] == "SAME",
        q["input_zero_point"], q["output_zero_point"],
        pointer(multiplier, I32), pointer(shift, I32), *q["activation_range"],
        pointer(out_nhwc, I8), out_nhwc.shape[1], out_nhwc.shape[2],
    )  # fmt: skip
    if status:
        raise RuntimeError(f"{entry['id']}: int8_conv2d returned {status}")
    return out_nhwc


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--bug", type=int, choices=(0, 1, 2), default=0, help="build a buggy twin (int8_conv.c)")
    args = parser.parse_args(argv)
    manifest = json.loads((args.directory / "manifest.json").read_text(encoding="utf-8"))
    written = 0
    with tempfile.TemporaryDirectory() as build_dir:
        lib = build(args.bug, Path(build_dir))
        for entry in manifest["entries"]:
            if entry.get("kind") != "quantized" or entry["op"] != "conv2d" or entry["dtype"] != "int8":
                continue  # not ours: check-npz reports it as without output
            np.save(args.directory / entry["output"], run(lib, args.directory, entry))
            written += 1
    print(f"wrote {written} outputs to {args.directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
