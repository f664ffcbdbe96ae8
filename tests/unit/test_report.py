"""The HTML and Markdown reports (harness/reports/report.py) and the heatmap PNGs (harness/reports/heatmap.py), from synthetic runs.

Records are built here with exactly the keys ``harness.reports.results.record`` and ``results.item_record`` produce, so
these tests need neither TensorFlow nor a pytest run (tests/plugin/test_report_browser.py does the real thing).
"""

from __future__ import annotations

import base64
import html
import re
import struct
import time
import zlib
from html.parser import HTMLParser

import numpy as np
import pytest

from harness.reports import heatmap, report, results

ENV = {
    "tensorflow": "2.21.0",
    "onednn": "1",
    "intra_op_threads": "1",
    "inter_op_threads": "1",
    "numpy": "2.4.6",
    "python": "3.11.7",
    "platform": "Linux-x86_64-with-glibc2.36",
    "machine": "x86_64",
    "cpu_count": 2,
    "cpu_flags": ["avx2", "fma"],
    "tf_cpp_min_log_level": "2",
}
RUN = {
    "started": "2026-11-22T04:56:13+0000",
    "argv": [".venv/lib/site-packages/pytest/__main__.py", "cases", "-n", "2"],
    "sweeps": "pairwise",
    "rootdir": "/repo",
    "finished": "2026-11-22T04:56:29+0000",
    "seconds": 15.7,
    "exitstatus": 0,
    "interrupted": False,
    "complete": True,
    "stale_divergences": [],
}


def divergence(did: str, link: str | None = None, scope: str = "forward") -> dict:
    """A row as ``results.divergence_rows`` writes it."""
    return {
        "id": did,
        "kind": "wrong_result",
        "summary": f"summary of {did}",
        "onednn": "any",
        "scope": scope,
        "tensorflow_versions": "<2.22,>=2.21",
        "tensorflow_does": ["wrong_values"],
        "strict": "per_entry",
        "link": link,
        "file": "cases/known_divergences.yaml",
        "evidence": "seen",
    }


def case(
    name: str,
    *,
    op: str = "conv2d",
    dtype: str = "float32",
    status: str = "passed",
    padding: str = "SAME",
    stride: str = "1",
    dilation: str = "1",
    layout: str = "NHWC",
    seconds: float = 0.01,
    **extra,
) -> dict:
    """A case record shaped like ``results.record`` (``extra`` overrides any key)."""
    rec = {
        "id": f"cases/t.yaml::{name}[{dtype}]",
        "kind": "case",
        "status": status,
        "file": "cases/t.yaml",
        "case": name,
        "op": op,
        "dtype": dtype,
        "tags": [],
        "sweep": None,
        "attrs": {"strides": 1, "padding": padding},
        "shapes": {"input": [1, 5, 5, 2], "filters": [3, 3, 2, 1], "output": [1, 5, 5, 1]},
        "layouts": {
            "input": {"given": "NHWC", "op": "NHWC", "kernel": "correlation"},
            "filters": {"given": "HWIO", "op": "HWIO", "kernel": "correlation"},
            "output": {"op": "NHWC", "expected": None},
        },
        "coverage": {"padding": padding, "layout": layout, "stride": stride, "dilation": dilation},
        "expect_error": False,
        "implementations": ["reference", "tensorflow"],
        "tensorflow": "agrees",
        "divergence": None,
        "applicable_divergences": [],
        "max_abs_error": 0.0,
        "max_rel_error": 0.0,
        "bound": 0.0,
        "margin": 0.0,
        "worst": "tensorflow vs reference",
        "tolerance": "c*u*K*(|x|*|w|) with c=2",
        "tolerance_override": None,
        "comparisons": [
            {
                "subject": "tensorflow",
                "against": "reference",
                "ok": status != "failed",
                "max_abs_error": 0.0,
                "max_rel_error": 0.0,
                "bound": 0.0,
                "margin": 0.0,
                "detail": "",
            }
        ],
        "errors": [],
        "notes": [],
        "diagnosis": [],
        "not_applicable": {},
        "seconds": seconds,
    }
    if status == "failed":
        rec.update(
            report=f"cases/t.yaml::{name}[{dtype}]  op={op}\nFAIL tensorflow vs reference: max|diff|=1",
            yaml=f"cases:\n- name: {name}\n  op: {op}\n",
            errors=["TensorFlow wrong_values: outside the bound"],
            tensorflow="wrong_values (TensorFlow's values are outside the bound)",
            arrays={},
            arrays_layout="NHWC",
        )
    rec.update(extra)
    return rec


def with_arrays(rec: dict, **arrays: np.ndarray) -> dict:
    """Attach output slices the way ``results.record`` does (N×H×W×C, base64 float64)."""
    rec["arrays"] = {name.replace("__", ":"): results.encode_array(a) for name, a in arrays.items()}
    return rec


def make_run(records, divergences=(), **run) -> results.Run:
    return results.Run(dict(ENV), {**RUN, **run}, list(divergences), list(records))


# --- a small HTML reader for the assertions ------------------------------------------------------------------


class Tables(HTMLParser):
    """Collects every table with an id: rows of cells {tag, class, title, text, attrs}, and row attributes."""

    def __init__(self):
        super().__init__()
        self.tables: dict[str, list[dict]] = {}
        self._stack: list[str | None] = []
        self._cell: dict | None = None

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag == "table":
            self._stack.append(a.get("id"))
            if a.get("id"):
                self.tables[a["id"]] = []
        elif tag == "tr" and self._stack and self._stack[-1]:
            self.tables[self._stack[-1]].append({"attrs": a, "cells": []})
        elif tag in ("td", "th") and self._stack and self._stack[-1] and self.tables[self._stack[-1]]:
            self._cell = {"tag": tag, "class": a.get("class", ""), "title": a.get("title", ""), "text": "", "attrs": a}
            self.tables[self._stack[-1]][-1]["cells"].append(self._cell)

    def handle_endtag(self, tag):
        if tag == "table" and self._stack:
            self._stack.pop()
        elif tag in ("td", "th"):
            self._cell = None

    def handle_data(self, data):
        if self._cell is not None:
            self._cell["text"] += data


def tables(page: str) -> dict[str, list[dict]]:
    parser = Tables()
    parser.feed(page)
    return parser.tables


def body_rows(table: list[dict]) -> list[dict]:
    return [r for r in table if r["cells"] and r["cells"][0]["tag"] == "td"]


# --- PNG decoding for the heatmap tests ------------------------------------------------------------------------


def decode_png(data: bytes) -> np.ndarray:
    """An 8-bit truecolour or indexed, non-interlaced PNG (what heatmap.png writes; filter 0 only) as H×W×3."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    pos, chunks = 8, []
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        tag, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        assert crc == zlib.crc32(tag + body) & 0xFFFFFFFF, tag
        chunks.append((tag, body))
        pos += 12 + length
    assert chunks[0][0] == b"IHDR" and chunks[-1][0] == b"IEND"
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    assert depth == 8 and colour in (2, 3) and interlace == 0
    raw = zlib.decompress(b"".join(body for tag, body in chunks if tag == b"IDAT"))
    channels = 3 if colour == 2 else 1
    rows = np.frombuffer(raw, np.uint8).reshape(height, 1 + channels * width)
    assert (rows[:, 0] == 0).all()  # filter type 0 on every row
    if colour == 2:
        return rows[:, 1:].reshape(height, width, 3)
    palette = np.frombuffer(dict(chunks)[b"PLTE"], np.uint8).reshape(-1, 3)
    return palette[rows[:, 1:]]


def png_size(data: bytes) -> tuple[int, int]:
    width, height = struct.unpack(">II", data[16:24])
    return width, height


# --- heatmaps ---------------------------------------------------------------------------------------------------


def test_png_round_trips_with_known_colours():
    a = np.array([[0.0, 1.0, 0.5], [np.nan, np.inf, -np.inf]])
    rgb = heatmap.colorize(a, "sequential")
    data = heatmap.png(rgb)
    assert png_size(data) == (3, 2)
    pixels = decode_png(data)
    assert pixels.shape == (2, 3, 3)
    assert tuple(pixels[0, 0]) == heatmap.VIRIDIS[0]  # the minimum: dark purple
    assert tuple(pixels[0, 1]) == heatmap.VIRIDIS[-1]  # the maximum: yellow
    assert tuple(pixels[0, 2]) == heatmap.VIRIDIS[4]  # halfway: the middle anchor
    assert all(tuple(p) == heatmap.NONFINITE for p in pixels[1])  # NaN, inf and -inf: one distinct colour
    assert heatmap.NONFINITE not in heatmap.VIRIDIS + heatmap.DIVERGING


def test_diverging_is_centred_on_zero():
    pixels = decode_png(heatmap.png(heatmap.colorize(np.array([[-2.0, 0.0, 2.0, 1.0]]), "diverging")))
    assert tuple(pixels[0, 0]) == heatmap.DIVERGING[0]
    assert tuple(pixels[0, 1]) == heatmap.DIVERGING[4]  # 0 is the centre colour (near white)
    assert tuple(pixels[0, 2]) == heatmap.DIVERGING[-1]
    # asymmetric data keeps 0 at the centre: -1 is as far below as 1 is above
    one_sided = heatmap.colorize(np.array([[0.0, 3.0]]), "diverging")
    assert tuple(one_sided[0, 0]) == heatmap.DIVERGING[4] and tuple(one_sided[0, 1]) == heatmap.DIVERGING[-1]


def test_constant_and_all_zero_arrays():
    assert (heatmap.colorize(np.full((2, 2), 7.0), "sequential") == heatmap.VIRIDIS[4]).all()
    assert (heatmap.colorize(np.zeros((2, 2)), "diverging") == heatmap.DIVERGING[4]).all()
    assert (heatmap.colorize(np.full((1, 2), np.nan), "sequential") == heatmap.NONFINITE).all()


def test_colorize_uses_a_given_scale():
    rgb = heatmap.colorize(np.array([[1.0, 3.0]]), "sequential", vmin=-1.0, vmax=3.0)
    assert tuple(rgb[0, 0]) == heatmap.VIRIDIS[4] and tuple(rgb[0, 1]) == heatmap.VIRIDIS[-1]


def test_png_truecolour_for_many_colours():
    rgb = np.random.default_rng(0).integers(0, 256, size=(20, 20, 3), dtype=np.uint8)  # 400 distinct colours
    data = heatmap.png(rgb)
    assert data[25] == 2 and png_size(data) == (20, 20)  # colour type 2
    assert (decode_png(data) == rgb).all()
    assert heatmap.png(heatmap.colorize(np.zeros((2, 2)), "sequential"))[25] == 3  # a heatmap: indexed


def test_png_rejects_bad_input_and_data_uri():
    with pytest.raises(ValueError):
        heatmap.png(np.zeros((2, 2, 3), np.float32))
    with pytest.raises(ValueError):
        heatmap.png(np.zeros((0, 2, 3), np.uint8))
    with pytest.raises(ValueError):
        heatmap.colorize(np.zeros(3), "sequential")
    assert heatmap.data_uri(b"\x89PNG").startswith("data:image/png;base64,iVBOR")


# --- counts and verdict ------------------------------------------------------------------------------------------


def test_counts_and_verdict_of_a_passing_run():
    run = make_run(
        [
            case("a"),
            case("b", status="xfailed", divergence="d1", applicable_divergences=["d1"]),
            results.item_record("tests/test_x.py::test_ok", "passed", 0.1),
            results.item_record("tests/test_x.py::test_skip", "skipped", 0.0, "no browser"),
        ],
        [divergence("d1")],
    )
    t = report.tally(run)
    assert (t["passed"], t["xfailed"], t["failed"], t["malformed"], t["crashed"], t["total"]) == (1, 1, 0, 0, 0, 2)
    assert t["tests"] == {"passed": 1, "skipped": 1}
    assert report.verdict(run) == "pass"
    page = report.render_html(run)
    assert 'data-verdict="pass"' in page and ">PASS<" in page
    assert "harness self-tests 1 passed, 1 skipped" in page
    assert 'id="banner"' not in page


@pytest.mark.parametrize(
    "extra, reason",
    [
        (case("bad", status="failed"), "1 failed case"),
        (
            results.item_record(
                "cases/m.yaml::x", "malformed", 0.0, "cases/m.yaml: case 'x': field 'op': unknown op", kind="malformed"
            ),
            "1 malformed case",
        ),
        (
            results.item_record("cases/t.yaml::y[float32]", "failed", 0.0, "worker 'gw0' crashed", kind="crashed"),
            "1 crashed item",
        ),
        (results.item_record("tests/test_x.py::test_bad", "failed", 0.0, "AssertionError"), "1 failing self-test"),
    ],
)
def test_any_failure_fails_the_run(extra, reason):
    run = make_run([case("a"), extra], exitstatus=1)
    assert report.verdict(run) == "fail"
    assert reason in report.verdict_reasons(run)
    page = report.render_html(run)
    assert 'data-verdict="fail"' in page and ">FAIL<" in page and reason in page


def test_malformed_and_crashed_are_listed_with_their_messages():
    run = make_run(
        [
            case("a"),
            results.item_record(
                "cases/m.yaml::x", "malformed", 0.0, "field 'op': unknown op 'conv4d'", kind="malformed"
            ),
            results.item_record("cases/t.yaml::y[float32]", "failed", 0.0, "node down: gw1", kind="crashed"),
        ]
    )
    t = report.tally(run)
    assert (t["malformed"], t["crashed"], t["total"]) == (1, 1, 3)
    problems = body_rows(tables(report.render_html(run))["problems"])
    texts = [[c["text"] for c in r["cells"]] for r in problems]
    assert texts == [
        ["cases/m.yaml::x", "malformed case", "field 'op': unknown op 'conv4d'"],
        ["cases/t.yaml::y[float32]", "crashed item", "node down: gw1"],
    ]
    md = report.render_summary(run)
    assert "`cases/m.yaml::x` (malformed)" in md and "`cases/t.yaml::y[float32]` (crashed)" in md


def test_stale_divergence_fails_the_run():
    run = make_run(
        [case("a", applicable_divergences=["d1"])], [divergence("d1")], stale_divergences=["d1"], exitstatus=1
    )
    assert report.verdict(run) == "fail"
    assert "stale known divergences: d1" in report.verdict_reasons(run)


def test_per_op_table():
    run = make_run(
        [
            case("a"),
            case("b", status="failed"),
            case("c", op="conv1d", layout="NWC"),
            case("e", op="conv1d", status="xfailed", expect_error=True),
        ]
    )
    rows = tables(report.render_html(run))["per-op"]
    texts = [[c["text"] for c in r["cells"]] for r in body_rows(rows)]
    # op, passed, xfailed, failed, skipped, total, error contracts, seconds
    assert texts[0][:7] == ["conv1d", "1", "1", "0", "0", "2", "1"]
    assert texts[1][:7] == ["conv2d", "1", "0", "1", "0", "2", "0"]
    assert texts[2][:7] == ["total", "2", "1", "1", "0", "4", "1"]


# --- coverage matrix --------------------------------------------------------------------------------------------


def coverage_records() -> list[dict]:
    return [
        case("s1"),
        case("s2"),  # conv2d SAME 1 1 NHWC float32: 2 passed -> green
        case("s1", dtype="float64"),
        case("s3", dtype="float64", status="xfailed", divergence="d1"),  # amber
        case("v1", padding="VALID", stride="2", dilation="1x2", layout="NCHW", status="failed"),  # red
        case("v2", padding="VALID", stride="2", dilation="1x2", layout="NCHW", status="xfailed"),
        case("d1", op="depthwise_conv2d", padding="explicit", stride="3"),
        case("e1", expect_error=True, status="passed", padding="SAME", stride="invalid", dilation="invalid"),
    ]


def test_coverage_matrix_cells_and_colours():
    page = report.render_html(make_run(coverage_records()))
    matrix = tables(page)["coverage"]
    header = [c["text"] for c in matrix[0]["cells"]]
    assert header == ["padding", "stride", "dilation", "layout", "float32", "float64"]
    groups = [r["cells"][0]["text"] for r in matrix[1:] if r["attrs"].get("data-group")]
    assert groups == ["conv2d (2 combinations)", "depthwise_conv2d (1 combination)"]
    rows = {tuple(c["text"] for c in r["cells"][:4]): r["cells"][4:] for r in body_rows(matrix)}
    assert list(rows) == [("SAME", "1", "1", "NHWC"), ("VALID", "2", "1x2", "NCHW"), ("explicit", "3", "1", "NHWC")]
    f32, f64 = rows["SAME", "1", "1", "NHWC"]
    assert "green" in f32["class"].split() and f32["text"] == "2"
    assert f32["title"].endswith("dtype=float32: passed 2, xfailed 0, failed 0")
    assert "amber" in f64["class"].split() and f64["title"].endswith("passed 1, xfailed 1, failed 0")
    assert f64["text"] == "2 1 xf"
    red, absent = rows["VALID", "2", "1x2", "NCHW"]
    assert "red" in red["class"].split() and red["text"] == "2 1 xf 1 fail"
    assert red["title"].endswith("passed 0, xfailed 1, failed 1")
    assert "absent" in absent["class"].split() and absent["text"] == "" and "not covered" in absent["title"]
    # the error contract is not in the matrix (its stride is "invalid") but in its own table
    assert not any("invalid" in key for key in rows)
    contracts = body_rows(tables(page)["error-contracts"])
    assert [c["text"] for c in contracts[0]["cells"]] == ["conv2d", "1"]
    assert "green" in contracts[0]["cells"][1]["class"]


def test_cell_colour_rules():
    from collections import Counter

    assert report.cell_colour(None) == "absent"
    assert report.cell_colour(Counter(passed=3)) == "green"
    assert report.cell_colour(Counter(passed=3, xfailed=1)) == "amber"
    assert report.cell_colour(Counter(passed=3, xfailed=1, failed=1)) == "red"
    assert report.cell_colour(Counter(skipped=1)) == "grey"


# --- failures and heatmaps ----------------------------------------------------------------------------------------


def failing_with_maps() -> dict:
    rng = np.random.default_rng(0)
    ref = rng.normal(size=(2, 3, 4, 2))
    tf = ref.copy()
    tf[1, 2, 3, 1] += 5.0
    tf[0, 0, 0, 0] = np.nan
    return with_arrays(case("wrong", status="failed"), reference=ref, tensorflow=tf, expected=ref)


def img_sources(page: str) -> list[str]:
    return re.findall(r'<img class="map" src="([^"]+)"', page)


def test_failure_section_has_report_yaml_and_heatmaps():
    page = report.render_html(make_run([case("ok"), failing_with_maps()], exitstatus=1))
    assert 'id="failure-0"' in page
    assert "cases/t.yaml::wrong[float32]  op=conv2d\nFAIL tensorflow vs reference: max|diff|=1" in page
    assert '<pre class="yaml">cases:\n- name: wrong\n  op: conv2d\n</pre>' in page
    assert page.index('<img class="map"') < page.index('<pre class="yaml">')  # the maps first, the YAML beside
    # reference, tensorflow, tensorflow − reference for 2 batches × 2 channels; expected not shown (no failing
    # comparison against it)
    sources = img_sources(page)
    assert len(sources) == 3 * 4
    assert "tensorflow − reference" in page
    first = decode_png(base64.b64decode(sources[0].split(",", 1)[1]))
    assert first.shape == (3, 4, 3)
    diff_nan = decode_png(base64.b64decode(sources[2].split(",", 1)[1]))
    assert tuple(diff_nan[0, 0]) == heatmap.NONFINITE  # NaN in TensorFlow's output: NaN difference


def test_failure_with_shape_mismatch_shows_both_without_difference():
    rec = with_arrays(case("shape", status="failed"), reference=np.ones((1, 3, 3, 2)), tensorflow=np.ones((1, 4, 2, 2)))
    page = report.render_html(make_run([rec]))
    assert "differ in shape" in page and "no difference map" in page
    assert "tensorflow − reference" not in page
    assert len(img_sources(page)) == 2 * 2


def test_failure_without_tensorflow_output():
    rec = with_arrays(
        case("abort", status="failed", tensorflow="aborts (the TensorFlow process died (SIGABRT))"),
        reference=np.arange(8.0).reshape(1, 2, 2, 2),
    )
    page = report.render_html(make_run([rec]))
    assert "TensorFlow returned no output (aborts (the TensorFlow process died (SIGABRT)))" in page
    assert len(img_sources(page)) == 2


def test_failure_without_any_arrays_and_expected_mismatch():
    no_arrays = case("early", status="failed")
    expected_wrong = with_arrays(
        case(
            "exp",
            status="failed",
            comparisons=[
                {
                    "subject": "reference",
                    "against": "expected",
                    "ok": False,
                    "max_abs_error": 1.0,
                    "max_rel_error": 0.3,
                    "bound": 0.0,
                    "margin": None,
                    "detail": "",
                }
            ],
        ),
        reference=np.zeros((1, 2, 2, 1)),
        tensorflow=np.zeros((1, 2, 2, 1)),
        expected=np.eye(2).reshape(1, 2, 2, 1),
    )
    page = report.render_html(make_run([no_arrays, expected_wrong]))
    assert "No output slices were recorded: the case failed before its outputs could be compared." in page
    assert "TensorFlow returned no output" not in page
    assert "expected − reference" in page and len(img_sources(page)) == 5  # ref, tf, tf−ref, expected, exp−ref


def test_many_failures_are_cut():
    failures = [case(f"f{i}", status="failed") for i in range(report.MAX_FAILURE_DETAILS + 3)]
    page = report.render_html(make_run(failures))
    assert page.count('<details class="failure"') == report.MAX_FAILURE_DETAILS
    assert "and 3 more" in page and f"cases/t.yaml::f{report.MAX_FAILURE_DETAILS + 2}[float32]" in page


# --- known divergences, overrides, slowest ---------------------------------------------------------------------


def test_divergence_table_counts_and_highlights():
    records = [
        case("x1", status="xfailed", divergence="excusing", applicable_divergences=["excusing"]),
        case("x2", status="xfailed", divergence="excusing", applicable_divergences=["excusing"]),
        case("p1", applicable_divergences=["excusing"]),
        case("c1", applicable_divergences=["coincident"]),
        case("c2", applicable_divergences=["coincident"]),
        case("s1", applicable_divergences=["stale"]),
    ]
    divs = [
        divergence("excusing", link="https://github.com/tensorflow/tensorflow/issues/1"),
        divergence("coincident"),
        divergence("stale"),
        divergence("unused"),
        divergence("grad", scope="gradient"),
    ]
    page = report.render_html(make_run(records, divs, stale_divergences=["stale"]))
    rows = {r["cells"][0]["text"]: r for r in body_rows(tables(page)["divergences"])}
    text = {k: [c["text"] for c in r["cells"]] for k, r in rows.items()}
    assert text["excusing"][5:8] == ["2", "3", "diverged in 2 of 3"]
    assert text["coincident"][5:8] == ["0", "2", "now passes? applied to 2 cases, none diverged"]
    assert rows["coincident"]["attrs"]["class"] == "now-passes"
    assert text["stale"][6] == "1" and text["stale"][7].startswith("now passes every case it applies to agreed")
    assert rows["stale"]["attrs"]["class"] == "stale"
    assert text["unused"][7] == "not exercised by this run" and "class" not in rows["unused"]["attrs"]
    assert "checked by tests/tensorflow/test_gradients.py" in text["grad"][7]
    assert (
        '<a href="https://github.com/tensorflow/tensorflow/issues/1" rel="noreferrer" '
        'title="https://github.com/tensorflow/tensorflow/issues/1">tensorflow/tensorflow#1</a>'
    ) in page
    md = report.render_summary(make_run(records, divs, stale_divergences=["stale"]))
    assert "### Known divergences observed\n- `excusing`: 2\n" in md
    assert "### Stale known divergences" in md and "- `stale`" in md


def test_the_machine_the_verdicts_depended_on_is_shown():
    import json

    from support import MACHINES

    zen4 = json.loads((MACHINES / "amd-epyc-zen4.json").read_text())
    env = {**ENV, **zen4}
    amx = {
        **divergence("amx_crash"),
        "not_here": "needs onednn_isa one of avx512_core_amx, here avx512_core_bf16",
        "observed_on": ["intel-sapphire-rapids"],
    }
    run = results.Run(env, dict(RUN), [amx, divergence("d1")], [case("a")])
    page = report.render_html(run)
    header = dict(re.findall(r"<dt>([^<]*)</dt><dd>([^<]*)</dd>", page))
    assert header["CPU"] == "AMD EPYC (x86_64, 2 cores)" and header["oneDNN ISA"] == "avx512_core_bf16 (oneDNN v3.7.3)"
    assert header["ISA cap"] == "none" and header["kernel paths"].startswith("measured in ")
    paths = {
        r["cells"][0]["text"]: [c["text"] for c in r["cells"][1:]] for r in body_rows(tables(page)["kernel-paths"])
    }
    assert paths["Conv2D"] == ["eigen", "onednn", "onednn", "eigen", "eigen"]  # float16 .. int32
    assert paths["Conv2DBackpropInput"][2] == "onednn (explicit padding: eigen)"
    rows = {r["cells"][0]["text"]: r for r in body_rows(tables(page)["divergences"])}
    assert rows["amx_crash"]["attrs"]["class"] == "na"
    assert rows["amx_crash"]["cells"][7]["text"].startswith("not applicable here needs onednn_isa one of")
    assert rows["amx_crash"]["cells"][2]["text"].endswith("seen on intel-sapphire-rapids")
    assert report.verdict(run) == "pass"
    md = report.render_summary(run)
    assert "machine: AMD EPYC (AuthenticAMD, x86\\_64), CPU ISA level avx512\\_core\\_bf16" in md
    assert "Not applicable on this machine or in this mode (1): `amx_crash` (needs onednn\\_isa" in md
    broken = results.Run(
        {**env, "probe": {**zen4["probe"], "error": "the probe's process died (SIGKILL)"}}, dict(RUN), [], [case("a")]
    )
    assert report.verdict_reasons(broken) == [
        "TensorFlow's kernel paths were not measured: the probe's process died (SIGKILL)"
    ]
    assert 'href="#sec-machine"' in report.render_html(broken)
    assert report.verdict(make_run([case("a")])) == "pass"  # a results file from before the probe: judged as then


def test_tolerance_overrides():
    override = {"reason": "bfloat16 rounding of a long sum", "c": 4.0, "atol": None}
    run = make_run(
        [
            case("t", dtype="float32", tolerance_override=override),
            case("t", dtype="bfloat16", tolerance_override=override),
            case("plain"),
        ]
    )
    rows = body_rows(tables(report.render_html(run))["overrides"])
    assert [[c["text"] for c in r["cells"]] for r in rows] == [
        ["cases/t.yaml::t", "bfloat16 rounding of a long sum", "4.0", "None", "float32, bfloat16"]
    ]
    assert "Tolerance overrides: 1" in report.render_summary(run)
    none = make_run([case("plain")])
    assert '<p id="overrides">none</p>' in report.render_html(none)
    assert "Tolerance overrides: none" in report.render_summary(none)


def test_slowest_cases_in_order():
    records = [case(f"c{i:02d}", seconds=float((i * 7) % 25), op="conv1d" if i % 2 else "conv2d") for i in range(25)]
    rows = body_rows(tables(report.render_html(make_run(records)))["slowest"])
    seconds = [float(r["cells"][6]["text"]) for r in rows]
    assert len(rows) == report.SLOWEST and seconds == sorted(seconds, reverse=True) and seconds[0] == 24.0
    first = [c["text"] for c in rows[0]["cells"]]
    slowest = max(records, key=lambda r: r["seconds"])
    assert first[1:5] == [
        slowest["id"],
        slowest["op"],
        "float32",
        "input=[1, 5, 5, 2], filters=[3, 3, 2, 1], output=[1, 5, 5, 1]",
    ]


# --- the page as a file ----------------------------------------------------------------------------------------


def test_no_external_resources():
    divs = [
        divergence("d", link="https://github.com/tensorflow/tensorflow/issues/9"),
        divergence("j", link="javascript:alert(1)"),
    ]
    page = report.render_html(make_run([case("ok"), failing_with_maps()], divs))
    for tag, attr, value in re.findall(r'<(\w+)[^>]*?\s(src|href)="([^"]*)"', page):
        if value.startswith(("data:", "#")):
            continue
        assert tag == "a" and value.startswith("https://"), (tag, attr, value)
    assert 'href="javascript:' not in page
    assert "@import" not in page and not re.search(r"url\(\s*['\"]?(https?:|//)", page)
    assert "<script src" not in page and '<link rel="stylesheet"' not in page
    assert '<link rel="icon" href="data:,">' in page
    assert "Content-Security-Policy" in page and "default-src 'none'" in html.unescape(page)


def test_error_trap_first_and_ready_flag_last():
    page = report.render_html(make_run([case("ok")]))
    head = page[page.index("<head>") + len("<head>") :]
    assert head.startswith("<script>") and head.index("window.onerror") < head.index("<meta charset")
    assert page.index("<meta charset") < 1024  # the encoding is known before anything is parsed
    assert page.rstrip().endswith('document.body.dataset.ready="1";})();</script></body></html>')


def test_everything_is_escaped():
    evil = "<script>alert(1)</script>"
    rec = with_arrays(
        case(f"x{evil}", status="failed", errors=[f"bad {evil}"], yaml=f"- name: {evil}\n", report=f"report {evil}"),
        reference=np.zeros((1, 1, 1, 1)),
        tensorflow=np.ones((1, 1, 1, 1)),
    )
    divs = [divergence(f"d{evil}", link=f"https://x.org/{evil}")]
    run = make_run(
        [
            rec,
            case("o", tolerance_override={"reason": evil, "c": 2, "atol": None}),
            results.item_record(f"cases/m.yaml::{evil}", "malformed", 0.0, evil, kind="malformed"),
        ],
        divs,
    )
    page = report.render_html(run)
    assert evil not in page
    assert page.count("<script>") == 2  # the error trap and the init script, nothing else
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    md = report.render_summary(run)
    assert "<script>" not in md.replace("`cases/t.yaml::x<script>alert(1)</script>[float32]`", "").replace(
        "`cases/m.yaml::<script>alert(1)</script>`", ""
    )


def test_interrupted_and_incomplete_banners():
    interrupted = make_run([case("a")], interrupted=True, complete=False, exitstatus=2)
    page = report.render_html(interrupted)
    assert 'id="banner" data-state="interrupted"' in page and "INTERRUPTED" in page and "the 1 items" in page
    assert report.verdict(interrupted) == "pass"  # judged on what ran; the banner says the rest did not
    assert "**interrupted**" in report.render_summary(interrupted)
    incomplete = make_run([case("a")], interrupted=False, complete=False)
    assert 'data-state="incomplete"' in report.render_html(incomplete)


def test_summary_markdown():
    failures = [case(f"f{i}", status="failed", op="conv2d_transpose") for i in range(23)]
    run = make_run(
        [case("a"), case("b", status="xfailed", divergence="d1", applicable_divergences=["d1"]), *failures],
        [divergence("d1")],
        exitstatus=1,
    )
    md = report.render_summary(run)
    lines = md.splitlines()
    assert lines[0] == "## ❌ tf-conv-harness: FAIL"
    assert "**1 passed · 1 xfailed · 23 failed · 0 malformed · 0 crashed · 0 skipped** (25 items)" in md
    assert "TensorFlow 2.21.0 · oneDNN on · NumPy 2.4.6 · Python 3.11.7 · threads 1/1 · sweeps pairwise" in md
    assert "| conv2d | 1 | 1 | 0 | 0 |" in md and "| conv2d\\_transpose | 0 | 0 | 23 | 0 |" in md
    assert "### Failures (23)" in md
    assert "- `cases/t.yaml::f0[float32]`: TensorFlow wrong\\_values: outside the bound" in md
    assert sum(line.startswith("- `cases/t.yaml::f") for line in lines) == report.MAX_SUMMARY_FAILURES
    assert "- … and 3 more" in md
    assert "- `d1`: 1" in md and "Tolerance overrides: none" in md
    assert report.render_summary(make_run([case("a")])).startswith("## ✅ tf-conv-harness: PASS")


def test_write_reports(tmp_path):
    paths = report.write_reports(make_run([case("a")]), tmp_path / "out")
    assert paths == [tmp_path / "out" / "report.html", tmp_path / "out" / "summary.md"]
    assert all(p.stat().st_size > 0 for p in paths)


def test_a_full_size_run_stays_small_and_fast():
    ops_ = ["conv2d", "depthwise_conv2d", "conv2d_transpose", "atrous_conv2d", "separable_conv2d", "conv1d"]
    dtypes = ["float16", "bfloat16", "float32", "float64", "int32"]
    rng = np.random.default_rng(1)
    records = [
        case(
            f"sweep/{i}",
            op=ops_[i % 6],
            dtype=dtypes[i % 5],
            padding=["SAME", "VALID", "explicit"][i % 3],
            stride=str(1 + i % 3),
            dilation=["1", "2", "1x2"][i % 4 % 3],
            layout=["NHWC", "NCHW"][i % 2],
            status="xfailed" if i % 17 == 0 else "passed",
            seconds=float(i % 101),
        )
        for i in range(4000)
    ]
    records += [
        with_arrays(
            case(f"bad{i}", status="failed"),
            reference=rng.normal(size=(2, 112, 112, 4)),
            tensorflow=rng.normal(size=(2, 112, 112, 4)),
        )
        for i in range(60)
    ]
    start = time.perf_counter()
    page = report.render_html(make_run(records))
    assert time.perf_counter() - start < 20
    assert len(page.encode()) < 6_000_000
    assert page.count('<details class="failure"') == report.MAX_FAILURE_DETAILS
    assert "subsampled (one pixel in 2 along each axis)" in page
