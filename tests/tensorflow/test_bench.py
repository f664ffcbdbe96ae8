"""``python -m bench.run``: the quick run's outputs have every row, number and target; the helpers' arithmetic.

The quick run is a subprocess (it imports TensorFlow, which this process keeps out), on one thread for TensorFlow
and OpenBLAS since pytest-xdist already runs a worker per core. Nothing here asserts a time or a target's status.
"""

from __future__ import annotations

import json
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support import ROOT

from bench import run as bench


@pytest.fixture(scope="module")
def quick_run(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    out = tmp_path_factory.mktemp("bench")
    env = {**os.environ, "HARNESS_TF_INTRA_OP_THREADS": "1", "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "bench.run", "--quick", "--out", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc


def positive(value) -> bool:
    return isinstance(value, (int, float)) and value > 0


def test_bench_json_has_every_shape_with_positive_numbers(quick_run):
    out, proc = quick_run
    doc = json.loads((out / "bench.json").read_text())
    assert [r["name"] for r in doc["rows"]] == [b.name for b in bench.QUICK_BENCHES]
    assert doc["environment"]["intra_op_threads"] == "1" and doc["environment"]["onednn"] in ("0", "1")
    assert doc["notes"] and doc["run"]["quick"] is True
    for key in ("float64", "float32"):
        assert positive(doc["gemm"][key]["median_gflops"]) and all(map(positive, doc["gemm"][key]["samples_gflops"]))
    assert positive(doc["pixel_loop"]["seconds_per_mac"]) and doc["pixel_loop"]["agrees_with_reference"]
    for row in doc["rows"]:
        assert positive(row["flops"]) and positive(row["im2col"]["bytes"]), row["name"]
        assert positive(row["memory"]["peak_bytes"]) and positive(row["memory"]["peak_over_im2col"]), row["name"]
        assert row["name"] in proc.stdout
        if row["memory_only"]:
            assert "reference" not in row
            continue
        ref = row["reference"]
        assert len(ref["times_s"]) == doc["run"]["repeat"] and all(map(positive, ref["times_s"]))
        assert positive(ref["gflops"]) and positive(ref["share_of_gemm_f64"])
        assert all(map(positive, row["reference_f64"]["times_s"]))
        if row["tensorflow"]["status"] == "ok":
            assert row["tensorflow"]["agrees_with_reference"] and positive(row["ratio_vs_tensorflow"])
        for key, ratio in (
            ("lax_reference", "ratio_vs_lax_reference"),
            ("lax_reference_f64", "ratio_vs_lax_reference_f64"),
        ):
            lax = row[key]
            assert lax["status"] in ("ok", "n/a", "not installed")
            if lax["status"] == "ok":
                assert positive(lax["median_s"]) and positive(row[ratio])
        if row["kind"] in ("conv", "transposed"):
            assert positive(row["layer_gemm"]["share_of_layer_gemm"]) and positive(row["layer_gemm"]["gflops"])
        if row["op"] == "conv2d" and row["groups"] == 1:
            assert positive(row["pixel_loop_extrapolated_s"])


def test_every_target_is_listed_with_its_measured_value(quick_run):
    out, proc = quick_run
    targets = json.loads((out / "bench.json").read_text())["targets"]
    assert [t["key"] for t in targets] == [
        "layer_gemm_median",
        "layer_gemm_floor",
        "vs_tensorflow",
        "depthwise_grouped_vs_tensorflow",
        "vs_lax_reference",
        "peak_over_im2col",
        "memory_only_peak",
        "int8_vs_tflite",
    ]
    for t in targets:
        assert t["status"] in ("MET", "MISSED", "n/a"), t
        assert t["status"] == "n/a" or positive(t["measured"]), t
        assert f"[{t['status']:>6}] {t['target']}" in proc.stdout
    # Every kind of row is in the quick set, so only lax_reference (an optional extra) may be unmeasured.
    assert all(t["status"] != "n/a" for t in targets if t["key"] != "vs_lax_reference")


def test_int8_rows_for_every_conv_and_depthwise_layer_bit_exact(quick_run):
    """Each conv2d / depthwise layer has an int8 row; the integer reference and TFLite's XNNPACK path computed the
    same integers (the reference under XNNPACK's float32 rounding), and their parameters saturate few outputs."""
    out, proc = quick_run
    doc = json.loads((out / "bench.json").read_text())
    assert [r["name"] for r in doc["int8_rows"]] == [
        b.name for b in bench.QUICK_BENCHES if b.op in ("conv2d", "depthwise_conv2d") and not b.memory_only
    ]
    assert {r["op"] for r in doc["int8_rows"]} == {"conv2d", "depthwise_conv2d"}
    for r in doc["int8_rows"]:
        assert r["bit_exact"] and r["differing_outputs"] == 0, r
        assert r["saturated_share"] < 0.05, r
        assert all(map(positive, r["reference"]["times_s"] + r["tflite"]["times_s"])) and positive(r["ratio_vs_tflite"])
        assert r["name"] in proc.stdout.split("int8 layer")[1]


def test_bench_png_is_a_png(quick_run):
    data = (quick_run[0] / "bench.png").read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    width, height = struct.unpack(">II", data[16:24])
    assert width > 400 and height > 200


# (2, 9, 9, 5) * (3, 3, 5, 7), stride 2, SAME: out 5 x 5, K = 3*3*5 = 45 rows, M = 2*5*5 = 50 columns.
CONV = bench.Bench("t", "conv2d", (2, 9, 9, 5), (3, 3, 5, 7), stride=2)
# (1, 16, 16, 256) -> (1, 32, 32, 128), filter [3, 3, 128, 256], stride 2: the forward conv2d maps 32 x 32 x 128 to
# 16 x 16 x 256, so K = 3*3*128 = 1152 rows, M = 1*16*16 = 256 columns.
TRANSPOSE = bench.Bench("t", "conv2d_transpose", (1, 16, 16, 256), (3, 3, 128, 256), stride=2, out=(1, 32, 32, 128))
DEPTHWISE = bench.Bench("t", "depthwise_conv2d", (1, 56, 56, 144), (3, 3, 144, 2), stride=2)  # out 28 x 28 x 288
# 32 groups of 4 channels: K = 3*3*128 = 1152 rows (every group's), M = 56*56 columns, 4 inputs per output.
GROUPED = bench.Bench("t", "conv2d", (1, 56, 56, 128), (3, 3, 4, 128))
# (1, 16, 56, 56, 64) * (3, 3, 3, 64, 64), SAME: K = 27*64 rows, M = 16*56*56 columns.
C3D = bench.Bench("t", "conv3d", (1, 16, 56, 56, 64), (3, 3, 3, 64, 64))
# (1, 16, 16, 16, 128) -> (1, 32, 32, 32, 64), kernel 2x2x2, stride 2: K = 8*64 rows, M = 16**3 input pixels.
UP3D = bench.Bench("t", "conv3d_transpose", (1, 16, 16, 16, 128), (2, 2, 2, 64, 128), stride=2, out=(1, 32, 32, 32, 64))
# kernel 2 dilated by 256 over 16256 samples, VALID: 16000 outputs, K = 2*64 rows.
CAUSAL = bench.Bench("t", "conv1d", (1, 16256, 64), (2, 64, 64), padding="VALID", dilation=256)


@pytest.mark.parametrize(
    "b, flops, im2col",
    [
        (CONV, 2 * 2 * 5 * 5 * 3 * 3 * 5 * 7, 45 * 50 * 8),
        (TRANSPOSE, 2 * 1 * 16 * 16 * 3 * 3 * 256 * 128, 1152 * 256 * 8),
        (DEPTHWISE, 2 * 1 * 28 * 28 * 3 * 3 * 144 * 2, 3 * 3 * 144 * 28 * 28 * 8),
        (GROUPED, 2 * 56 * 56 * 3 * 3 * 4 * 128, 1152 * 56 * 56 * 8),
        (C3D, 2 * 16 * 56 * 56 * 27 * 64 * 64, 27 * 64 * 16 * 56 * 56 * 8),
        (UP3D, 2 * 16**3 * 8 * 128 * 64, 8 * 64 * 16**3 * 8),
        (CAUSAL, 2 * 16000 * 2 * 64 * 64, 2 * 64 * 16000 * 8),
    ],
)
def test_flop_and_im2col_counts_by_hand(b, flops, im2col):
    assert bench.flops(b) == flops
    assert bench.im2col_bytes(b) == im2col


def test_the_memory_only_shape_has_an_im2col_over_one_gib():
    big = [b for b in bench.BENCHES if b.memory_only]
    assert big and all(bench.im2col_bytes(b) > bench.GIB for b in big)
    assert bench.im2col_bytes(big[0]) == 3 * 3 * 64 * 8 * 224 * 224 * 8  # 1.85 GB


def test_the_benchmark_list_is_the_issues():
    ops = [b.op for b in bench.BENCHES if not b.memory_only]
    assert ops.count("conv2d") == 8 and ops.count("depthwise_conv2d") == 2 and ops.count("conv2d_transpose") == 2
    assert {"conv3d", "conv3d_transpose", "conv1d"} <= set(ops)
    assert any(bench.geometry(b).groups == 32 for b in bench.BENCHES)  # ResNeXt
    c3d = next(b for b in bench.BENCHES if b.op == "conv3d")
    assert (c3d.x, c3d.w_shape) == ((1, 16, 56, 56, 64), (3, 3, 3, 64, 64))
    for b in bench.BENCHES:
        bench.geometry(b)  # every output_shape is reachable


def test_the_pixel_loop_is_a_correlation():
    from harness.conv import reference

    arrays = bench.operands(CONV)
    x, w = arrays["input"], arrays["filters"]
    assert np.allclose(bench.pixel_loop_conv2d(x, w, 2, "SAME"), reference.conv2d(x, w, 2, "SAME"), atol=1e-5)


SMALL = {
    "grouped": bench.Bench("s", "conv2d", (1, 6, 7, 8), (3, 3, 2, 8)),
    "up3d": bench.Bench("s", "conv3d_transpose", (1, 2, 3, 2, 4), (2, 3, 2, 2, 4), stride=2, out=(1, 4, 6, 4, 2)),
    "causal": bench.Bench("s", "conv1d", (1, 20, 3), (2, 3, 4), padding="VALID", dilation=4),
    "depthwise": bench.Bench("s", "depthwise_conv2d", (1, 7, 6, 3), (3, 3, 3, 2), stride=2),
    "upsample": bench.Bench("s", "conv2d_transpose", (1, 3, 4, 4), (3, 3, 2, 4), stride=2, out=(1, 6, 8, 2)),
}


@pytest.mark.parametrize("name", SMALL)
def test_the_lax_formulations_compute_the_reference_s_result(name):
    """Every kind of layer's lax_reference formulation agrees with the reference (small layers, float64)."""
    lax = bench.lax_reference_module()
    if lax is None:
        pytest.skip("jax is not installed")
    b = SMALL[name]
    arrays = bench.operands(b, dtype=np.float64)
    fn, note = bench.lax_formulation(b, arrays, lax)
    if fn is None:
        pytest.skip(note)
    assert bench.agrees(fn(), bench.reference_call(b, arrays)()), note


@pytest.mark.parametrize("argv", [["--repeat", "0"], ["--repeat", "x"], ["--only", "no-such-shape"], ["--bogus"]])
def test_bad_arguments_are_argparse_errors(argv, capsys):
    with pytest.raises(SystemExit) as exc:
        bench.main(argv)
    assert exc.value.code == 2
    assert "error:" in capsys.readouterr().err


def test_only_selects_by_op_or_name():
    assert [b.name for b in bench.select(bench.BENCHES, ["depthwise"])] == ["mobilenetv2 dw 112", "mobilenetv2 dw 56/2"]
    assert len(bench.select(bench.BENCHES, ["conv5", "upsample"])) == 3


def test_a_baseline_run_gives_each_layer_s_ratio_and_the_not_slower_target():
    rows = [
        {"name": "a", "reference": {"median_s": 1.05}},
        {"name": "b", "reference": {"median_s": 3.0}},
        {"name": "new layer", "reference": {"median_s": 9.0}},
        {"name": "memory-only", "memory_only": True},
    ]
    baseline = {"rows": [{"name": "a", "reference": {"median_s": 1.0}}, {"name": "b", "reference": {"median_s": 2.5}}]}
    target = bench.against_baseline(rows, baseline)
    assert [r.get("ratio_vs_baseline") for r in rows] == [pytest.approx(1.05), pytest.approx(1.2), None, None]
    assert (
        target["status"] == "MISSED"
        and target["measured"] == pytest.approx(1.2)
        and "largest ratio: b" in target["detail"]
    )
    rows[1]["reference"]["median_s"] = 2.6
    assert bench.against_baseline(rows, baseline)["status"] == "MET"
    assert bench.against_baseline(rows, {"rows": []})["status"] == "n/a"


def test_an_unreadable_baseline_is_an_argparse_error(tmp_path, capsys):
    (tmp_path / "bench.json").write_text("not json")
    with pytest.raises(SystemExit) as exc:
        bench.main(["--baseline", str(tmp_path / "bench.json"), "--quick", "--only", "quick conv2d"])
    assert exc.value.code == 2 and "--baseline" in capsys.readouterr().err
