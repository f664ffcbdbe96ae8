"""harness.reports.atlas on hand-made matrix runs: cell states, onsets and fixes, measured ranges, new groups, the
ranges --suggest proposes, and atlases of several machines and partial matrices merged."""

import json

import pytest

from harness.reports import atlas
from harness.reports.results import Run

KNOWN = [
    {"id": "old_bug", "tensorflow_versions": ">=2.21,<2.22", "strict": "per_case", "tensorflow_does": ["wrong_values"]},
    {"id": "new_bug", "tensorflow_versions": ">=2.21,<2.22", "strict": "per_case", "tensorflow_does": ["aborts"]},
    {"id": "onednn_only", "tensorflow_versions": ">=2.21,<2.22", "strict": "per_case", "tensorflow_does": ["aborts"]},
]
ZEN4 = {"cpu_model": "AMD EPYC 9B14", "cpu_isa_level": "avx512_core"}
ZEN3 = {"cpu_model": "AMD EPYC 7B13", "cpu_isa_level": "avx2"}
ZEN4_LABEL, ZEN3_LABEL = "AMD EPYC 9B14 (avx512_core)", "AMD EPYC 7B13 (avx2)"


def rec(item, status, tensorflow="agrees", applicable=(), divergence=None, op="conv2d", features=None, **kw):
    return {
        "id": f"cases/x.yaml::{item}[float32]",
        "kind": "case",
        "status": status,
        "op": op,
        "dtype": "float32",
        "tensorflow": tensorflow,
        "applicable_divergences": list(applicable),
        "divergence": divergence,
        "check": "forward",
        "features": features or {"op": op, "expect_error": False, "eigen_kernel": False},
        "shapes": {"input": [1, 4, 4, 1]},
        "errors": [f"TensorFlow {tensorflow}"],
        **kw,
    }


def run(version, onednn, *records, machine=None, not_here=None):
    """A run's results; ``not_here``: {entry id: why it cannot apply there} (the plugin's divergence rows)."""
    env = {"tensorflow": version, "onednn": onednn, "cpu_model": "test CPU", **(machine or {})}
    rows = [{"id": i, "not_here": why} for i, why in (not_here or {}).items()]
    return Run(env, {"registry": "r1"}, rows, list(records))


def column(spec, onednn):
    return {
        "key": f"tf{spec}-onednn-{atlas.mode_name(onednn)}",
        "spec": spec,
        "onednn": onednn,
        "state": "ran",
        "tensorflow": spec + ".0",
    }


def matrix(spec_records):
    """{(spec, onednn): records} -> (columns, runs)."""
    cols = [column(s, m) for s, m in spec_records]
    runs = {c["key"]: run(c["tensorflow"], c["onednn"], *recs) for c, recs in zip(cols, spec_records.values())}
    return cols, runs


def old_bug(state):
    return {
        "diverges": rec("a", "xfailed", "wrong_values", ["old_bug"], "old_bug"),
        "agrees": rec("a", "failed", "agrees", ["old_bug"]),
        "other": rec("a", "failed", "raises ValueError (x)", ["old_bug"]),
    }[state]


def test_cells_say_diverges_agrees_errors_and_not_applicable():
    r = run(
        "2.17.1",
        "1",
        old_bug("diverges"),
        rec("b", "failed", "aborts (SIGABRT)", ["new_bug"]),
        rec("c", "failed", "agrees", ["new_bug"]),
        not_here={"onednn_only": "needs oneDNN on"},
    )
    cells = atlas.cells(r, KNOWN)
    assert [cells[i]["state"] for i in ("old_bug", "new_bug", "onednn_only")] == [
        "diverges",
        "errors",
        "not applicable",
    ]
    assert cells["new_bug"] == {"state": "errors", "diverges": 0, "agrees": 1, "other": 1, "shadowed": 0}
    assert cells["onednn_only"]["detail"] == "needs oneDNN on"
    assert atlas.cells(run("2.17.1", "1", old_bug("agrees")), KNOWN[:1])["old_bug"]["state"] == "agrees"
    assert atlas.cells(run("2.17.1", "1"), KNOWN[:1])["old_bug"]["detail"] == "no case matched here"


def test_a_backend_entry_in_a_run_that_did_not_check_the_backend_is_not_run():
    xla = {"id": "xla_bug", "backend": "tensorflow-xla", "tensorflow_does": ["wrong_values"]}
    item = rec("a", "xfailed", "wrong_values", ["xla_bug"], "xla_bug", backend="tensorflow-xla")
    assert atlas.cells(run("2.17.1", "1", old_bug("agrees")), [xla])["xla_bug"] == {
        "state": "not run",
        "diverges": 0,
        "agrees": 0,
        "other": 0,
        "shadowed": 0,
        "detail": "the tensorflow-xla backend was not checked in this run",
    }
    assert atlas.cells(run("2.17.1", "1", item), [xla])["xla_bug"]["state"] == "diverges"
    other = rec("b", "passed", backend="tensorflow-xla")  # the backend ran; no case matched the entry
    assert atlas.cells(run("2.17.1", "1", other), [xla])["xla_bug"]["state"] == "not applicable"


def test_an_item_another_entry_excused_counts_by_what_tensorflow_did():
    # both entries apply; new_bug (listed first) excused the abort: it is old_bug's "other", new_bug's divergence
    aborted = rec("a", "xfailed", "aborts (SIGABRT)", ["new_bug", "old_bug"], "new_bug")
    wrong = rec("b", "xfailed", "wrong_values (x)", ["new_bug", "old_bug"], "old_bug")
    cells = atlas.cells(run("2.19.1", "1", aborted), KNOWN)
    assert cells["new_bug"]["state"] == "diverges" and cells["old_bug"] == {
        "state": "agrees",
        "diverges": 0,
        "agrees": 1,
        "other": 0,
        "shadowed": 1,
    }
    assert atlas.cells(run("2.19.1", "1", wrong), KNOWN)["old_bug"]["state"] == "diverges"
    both = rec("c", "xfailed", "aborts (SIGABRT)", ["new_bug", "onednn_only"], "new_bug")  # both declare aborts
    assert atlas.cells(run("2.19.1", "1", both), KNOWN)["onednn_only"]["state"] == "not applicable"


def test_doing_something_else_ends_a_range_like_agreeing():
    cols, runs = matrix({("2.18", "1"): [old_bug("diverges")], ("2.19", "1"): [old_bug("other")]})
    entry = atlas.build(cols, runs, KNOWN)["divergences"][0]
    assert entry["measured"]["range"] == ">=2.18,<2.19" and entry["onset"]["on"]["fixed_in"] == "2.19"
    assert not any(
        "<- update" in line
        for line in atlas.suggestions(atlas.build(cols, runs, [{**KNOWN[0], "tensorflow_versions": "<2.19,>=2.18"}]))
        if line.startswith("old_bug")
    )


def test_an_onset_and_a_fix_are_read_off_and_become_the_measured_range():
    states = {"2.13": "agrees", "2.14": "diverges", "2.15": "diverges", "2.16": "agrees", "2.17": "agrees"}
    cols, runs = matrix({(s, "1"): [old_bug(st)] for s, st in states.items()})
    built = atlas.build(cols, runs, KNOWN)
    entry = built["divergences"][0]
    assert entry["onset"]["on"] == {
        "state": "diverges",
        "first_bad": "2.14",
        "last_good": "2.13",
        "last_bad": "2.15",
        "fixed_in": "2.16",
        "onset": "2.14",
        "fix": "2.16",
    }
    assert entry["onset"]["off"]["state"] == "not run" and entry["onset"]["off"]["first_bad"] is None
    assert entry["measured"]["range"] == ">=2.14,<2.16" and entry["open_in_nightly"] is None
    assert entry["measured"]["text"] == "2.14 to 2.15, fixed in 2.16" and entry["nightly"] == "not run"


def test_an_onset_at_the_edge_of_what_was_run_says_so():
    cols, runs = matrix({(s, "1"): [old_bug("diverges")] for s in ("2.15", "2.16", "2.21")})
    entry = atlas.build(cols, runs, KNOWN)["divergences"][0]
    on = entry["onset"]["on"]
    assert (on["first_bad"], on["last_good"], on["onset"], on["fix"]) == ("2.15", None, "<=2.15", ">2.21")
    assert atlas.onset_text(on) == "first bad <=2.15, not fixed by 2.21"
    assert entry["measured"]["text"] == "<=2.15 to 2.21, open"
    assert (entry["measured"]["onset"], entry["measured"]["fix"]) == ("<=2.15", ">2.21")


def test_a_divergence_open_in_nightly_has_no_upper_bound():
    states = {"2.20": "diverges", "2.21": "diverges", "nightly": "diverges"}
    cols, runs = matrix({(s, "1"): [old_bug(st)] for s, st in states.items()})
    entry = atlas.build(cols, runs, KNOWN)["divergences"][0]
    assert entry["measured"]["range"] == ">=2.20" and entry["open_in_nightly"] is True


def test_a_gap_is_excluded_and_either_onednn_mode_counts():
    cols, runs = matrix(
        {
            ("2.15", "1"): [old_bug("diverges")],
            ("2.16", "1"): [old_bug("agrees")],
            ("2.17", "1"): [old_bug("agrees")],
            ("2.17", "0"): [old_bug("diverges")],
        }
    )
    entry = atlas.build(cols, runs, KNOWN)["divergences"][0]
    assert entry["measured"]["range"] == ">=2.15,!=2.16.*" and entry["measured"]["excluded"] == ["2.16"]


def test_a_version_that_did_not_run_is_an_error_column():
    cols, runs = matrix({("2.17", "1"): [old_bug("diverges")]})
    cols.append(
        {
            "key": "tf2.99-onednn-on",
            "spec": "2.99",
            "onednn": "1",
            "state": "install failed",
            "error": "TensorFlow 2.99: pip has no tensorflow-cpu==2.99.*",
        }
    )
    built = atlas.build(cols, runs, KNOWN)
    assert built["divergences"][0]["cells"]["tf2.99-onednn-on"]["state"] == "errors"
    assert built["divergences"][0]["measured"]["range"] == ">=2.17"  # a failed run measures nothing
    assert "pip has no" in atlas.render(built)


def test_a_version_run_in_one_onednn_mode_only_is_not_run_in_the_other():
    cols, runs = matrix({("2.15", "1"): [old_bug("diverges")], ("2.16", "0"): [old_bug("agrees")]})
    built = atlas.build(cols, runs, KNOWN)
    assert [(c["spec"], c["onednn"], c["state"]) for c in built["columns"]] == [
        ("2.15", "1", "ran"),
        ("2.16", "1", "not run"),
        ("2.15", "0", "not run"),
        ("2.16", "0", "ran"),
    ]
    cells = built["divergences"][0]["cells"]
    assert cells["tf2.16-onednn-on"] == {
        "state": "not run",
        "text": "not run",
        "diverges": 0,
        "agrees": 0,
        "other": 0,
        "shadowed": 0,
        "detail": None,
        "measurements": [],
    }
    page = atlas.render(built)
    assert page.count('data-state="not run"') == 2 * len(KNOWN)
    # the oneDNN modes are measured apart: on has no agreeing version before 2.15, so its onset is at the edge
    assert built["divergences"][0]["onset"]["on"]["onset"] == "<=2.15"
    assert built["divergences"][0]["onset"]["off"]["state"] == "agrees"


def test_new_disagreements_are_grouped_with_their_shared_features_and_smallest_repro():
    feats = {"op": "conv2d", "expect_error": False, "eigen_kernel": True, "padding": "SAME", "dtype": "float32"}
    small = rec("small", "failed", "wrong_values", features=feats)
    big = rec("big", "failed", "wrong_values", features={**feats, "padding": "VALID"}, shapes={"input": [1, 40, 40, 3]})
    other = rec("raise", "failed", "raises ValueError (bad)", features=feats)
    cols, runs = matrix({("2.13", "1"): [big, small, other], ("2.14", "1"): [small]})
    built = atlas.build(cols, runs, KNOWN)
    groups = {g["behaviour"]: g for g in built["new"]}
    assert set(groups) == {"wrong_values", "raises ValueError"}
    wrong = groups["wrong_values"]
    assert wrong["columns"] == {"tf2.13-onednn-on": 2, "tf2.14-onednn-on": 1}
    assert wrong["when"]["eigen_kernel"] is True and "padding" not in wrong["when"]
    assert wrong["repro"]["tf2.13-onednn-on"]["id"].endswith("::small[float32]")
    assert "--tensorflow 2.13 --onednn 1" in wrong["repro"]["tf2.13-onednn-on"]["command"]
    assert built["per_version"]["tf2.13-onednn-on"]["conv2d"] == {"failed": 3, "unexplained": 3}


def test_per_version_counts_and_suggestions():
    cols, runs = matrix({("2.16", "1"): [old_bug("agrees")], ("2.17", "1"): [old_bug("diverges")]})
    built = atlas.build(cols, runs, KNOWN)
    assert built["per_version"]["tf2.17-onednn-on"] == {"conv2d": {"xfailed": 1}}
    # the entry applied and TensorFlow agreed: it does not hold there, which is not a failure
    assert built["per_version"]["tf2.16-onednn-on"] == {"conv2d": {"not holding": 1}}
    lines = atlas.suggestions(built)
    assert lines[0] == "versions run: oneDNN on: 2.16, 2.17; oneDNN off: not run"
    assert lines[1] == "machines: test CPU (unknown ISA level)"
    (line,) = [line for line in lines if line.startswith("old_bug")]
    # declared >=2.21,<2.22: 2.17 diverged and 2.16 agreed, so the range starts at 2.17; nothing after 2.17 was run
    assert "measured 2.17, open" in line and line.endswith("<- update: >=2.17,<2.22")
    (line,) = [line for line in lines if line.startswith("onednn_only")]
    assert "measured not applicable here" in line and "update" not in line


def test_an_items_outcome_sets_the_failures_of_entries_that_do_not_hold_apart():
    r = run(
        "2.15.1",
        "1",
        old_bug("diverges"),
        old_bug("agrees"),
        old_bug("other"),
        rec("b", "failed", "wrong_values"),
        rec("c", "passed"),
    )
    assert [atlas.outcome(x) for x in r.records] == ["xfailed", "not holding", "failed", "failed", "passed"]
    assert atlas.outcome_counts(r) == {"passed": 1, "xfailed": 1, "not holding": 1, "failed": 2}


@pytest.mark.parametrize(
    "text,want",
    [
        ("agrees", "agrees"),
        ("wrong_values (outside)", "wrong_values"),
        ("raises InvalidArgumentError (x (y))", "raises InvalidArgumentError"),
        ("aborts (the TensorFlow process died)", "aborts"),
    ],
)
def test_behaviour_is_read_from_the_record(text, want):
    assert atlas._behaviour({"tensorflow": text}) == want


def test_a_gradient_records_behaviour_is_its_first_disagreeing_part():
    r = {"check": "gradients", "tensorflow": "tape agrees; Conv2DBackpropInput wrong_values (x); B aborts"}
    assert atlas._behaviour(r) == "wrong_values"


def test_a_fix_in_nightly_ends_the_range_before_the_release_it_precedes():
    cols, runs = matrix(
        {
            ("2.20", "1"): [old_bug("diverges")],
            ("2.21", "1"): [old_bug("diverges")],
            ("nightly", "1"): [old_bug("agrees")],
        }
    )
    next(c for c in cols if c["spec"] == "nightly")["tensorflow"] = "2.23.0-dev20261026"
    entry = atlas.build(cols, runs, KNOWN)["divergences"][0]
    assert entry["measured"]["range"] == ">=2.20,<2.23" and entry["open_in_nightly"] is False


def test_a_divergence_new_in_nightly_starts_at_its_pre_releases():
    cols, runs = matrix({("2.21", "1"): [old_bug("agrees")], ("nightly", "1"): [old_bug("diverges")]})
    next(c for c in cols if c["spec"] == "nightly")["tensorflow"] = "2.23.0-dev20261026"
    entry = atlas.build(cols, runs, KNOWN)["divergences"][0]
    assert entry["measured"]["range"] == ">=2.23.0.dev0" and entry["open_in_nightly"] is True
    assert entry["onset"]["on"] == {
        "state": "diverges",
        "first_bad": "nightly",
        "last_good": "2.21",
        "last_bad": "nightly",
        "fixed_in": None,
        "onset": "nightly",
        "fix": ">nightly",
    }


def test_a_repro_command_says_whose_disagreement_it_is():
    col = {"spec": "2.17", "onednn": "1"}
    assert (
        atlas.repro_command("f.yaml::a[float32]", col) == "harness repro 'f.yaml::a[float32]' --tensorflow 2.17 "
        "--onednn 1"
    )
    assert atlas.repro_command("f.yaml::a[float32@onnxruntime]", col, "onnxruntime").endswith(
        "'f.yaml::a[float32]' --tensorflow 2.17 --onednn 1  # TensorFlow's side; the disagreement is onnxruntime's"
    )
    assert "failure is in its gradients" in atlas.repro_command("f.yaml::a[float32:gradients]", col, None, "gradients")


# --- proposing a range ---------------------------------------------------------------------------------------


def measured(versions, nightly=()):
    """An entry's ``measured`` as ``propose`` reads it: {minor: state}."""
    bad = [v for v, s in versions.items() if s == "diverges"]
    return {"state": "diverges" if bad else "agrees", "versions": versions, "nightly": list(nightly)}


D, A, NA = "diverges", "agrees", "not applicable"


@pytest.mark.parametrize(
    "declared,versions,want",
    [
        # the partial run: nothing before 2.15 was run, so the declared onset stands
        (">=2.13", {"2.15": D, "2.16": D, "2.21": D}, None),
        (">=2.13", {"2.13": D, "2.14": D, "2.21": D}, None),
        # narrowed by a version run that agreed
        (">=2.13", {"2.13": A, "2.14": D, "2.15": D}, ">=2.14"),
        (">=2.13", {"2.15": A, "2.16": D}, ">=2.16"),
        (">=2.13", {"2.13": D, "2.14": D, "2.15": D, "2.16": A, "2.17": A}, ">=2.13,<2.16"),
        (">=2.13", {"2.15": D, "2.16": A, "2.17": D}, ">=2.13,!=2.16.*"),
        # a declared fix that no version run contradicts stands; one that diverged moves it
        (">=2.13,<2.17", {"2.15": D, "2.16": D, "2.21": A}, None),
        (">=2.13,<2.17", {"2.15": D, "2.17": D, "2.21": A}, ">=2.13,<2.18"),
        # widened by a version run that diverged, no further than it
        (">=2.17", {"2.15": D}, ">=2.15"),
        (">=2.18", {"2.15": A, "2.16": A, "2.21": D}, None),
        # a declared exclusion stands unless a version run diverged there
        (">=2.13,!=2.14.*", {"2.15": D, "2.16": D}, None),
        (">=2.13,!=2.16.*", {"2.15": D, "2.16": D}, ">=2.13"),
        # not applicable measures nothing
        (">=2.13", {"2.13": NA, "2.14": NA, "2.15": D}, None),
        ("any", {"2.13": D}, None),
        ("any", {"2.13": A, "2.14": D}, ">=2.14"),
        # an onset in a nightly: its pre-releases are in the range
        (">=2.24", {"2.21": A, "2.23": D}, ">=2.23.0.dev0"),
    ],
)
def test_a_range_moves_only_for_a_version_that_was_run(declared, versions, want):
    nightly = ["2.23"] if "2.23" in versions else []
    assert atlas.propose(declared, measured(versions, nightly)) == want


def test_nothing_is_proposed_without_a_divergence():
    for state in ("agrees", "errors", "not applicable", "not run"):
        assert atlas.propose(">=2.13", {"state": state, "versions": {}, "nightly": []}) is None


# --- several machines and partial matrices -------------------------------------------------------------------

KNOWN2 = [
    {"id": "old_bug", "tensorflow_versions": ">=2.13", "tensorflow_does": ["wrong_values"]},
    {"id": "avx512_bug", "tensorflow_versions": ">=2.16", "onednn": "on", "tensorflow_does": ["wrong_values"]},
    {"id": "fixed_bug", "tensorflow_versions": ">=2.13,<2.17", "tensorflow_does": ["wrong_values"]},
    {"id": "late_bug", "tensorflow_versions": ">=2.18", "tensorflow_does": ["wrong_values"]},
]
FULL = [f"2.{n}" for n in range(13, 22)]
PARTIAL = ["2.15", "2.16", "2.21"]
AVX512_ONLY = "needs onednn_isa one of avx512_core, avx512_core_bf16, here avx2"


def holds(entry, version, onednn, machine):
    """Whether ``entry`` of KNOWN2 diverges there: True, False (agrees) or None (cannot apply there)."""
    minor = int(version.split(".")[1])
    if entry == "avx512_bug":
        return None if onednn == "0" or machine is ZEN3 else minor >= 16
    return {"old_bug": True, "fixed_bug": minor < 17, "late_bug": minor >= 18}[entry]


def machine_run(versions, modes, machine):
    """A matrix run of KNOWN2 on ``machine``: (columns, runs); each entry has one case per run."""
    cols, runs = [], {}
    for mode in modes:
        for version in versions:
            col = column(version, mode)
            records, not_here = [], {}
            for n, d in enumerate(KNOWN2):
                h = holds(d["id"], version, mode, machine)
                if h is None:
                    not_here[d["id"]] = "needs oneDNN on" if mode == "0" else AVX512_ONLY
                elif h:
                    records.append(rec(f"c{n}", "xfailed", "wrong_values (x)", [d["id"]], d["id"]))
                else:
                    records.append(rec(f"c{n}", "failed", "agrees", [d["id"]]))
            cols.append(col)
            runs[col["key"]] = run(col["tensorflow"], mode, *records, machine=machine, not_here=not_here)
    return cols, runs


def full_and_partial():
    """The atlas of a full matrix (2.13 to 2.21, oneDNN on and off) on a Zen 4, and of a partial one (2.15, 2.16,
    2.21, oneDNN on) on a Zen 3, as JSON read back."""
    full = atlas.build(*machine_run(FULL, ("1", "0"), ZEN4), KNOWN2, generated="2026-12-01T00:00:00+0000")
    partial = atlas.build(*machine_run(PARTIAL, ("1",), ZEN3), KNOWN2, generated="2026-12-02T00:00:00+0000")
    return json.loads(atlas.dumps(full)), json.loads(atlas.dumps(partial))


def by_id(built):
    return {d["id"]: d for d in built["divergences"]}


def test_a_full_matrix_measures_the_declared_ranges():
    full, _ = full_and_partial()
    got = {i: (d["measured"]["range"], d["measured"]["onset"], d["measured"]["fix"]) for i, d in by_id(full).items()}
    assert got == {
        "old_bug": (">=2.13", "<=2.13", ">2.21"),
        "avx512_bug": (">=2.16", "2.16", ">2.21"),
        "fixed_bug": (">=2.13,<2.17", "<=2.13", "2.17"),
        "late_bug": (">=2.18", "2.18", ">2.21"),
    }
    assert not any("<- update" in line for line in atlas.suggestions(full))


def test_a_partial_matrix_says_what_it_did_not_measure():
    _, partial = full_and_partial()
    entries = by_id(partial)
    assert entries["old_bug"]["measured"]["text"] == "<=2.15 to 2.21, open"
    assert entries["old_bug"]["onset"]["off"]["state"] == "not run"
    avx = entries["avx512_bug"]
    assert {c["state"] for c in avx["cells"].values()} == {"not applicable"}
    assert avx["cells"]["tf2.15-onednn-on"]["text"] == "not applicable here"
    assert avx["cells"]["tf2.15-onednn-on"]["detail"] == AVX512_ONLY
    assert avx["measured"]["state"] == "not applicable" and avx["measured"]["text"] == "not applicable here"
    assert avx["onset"] == {
        "on": {**dict.fromkeys(("first_bad", "last_good", "last_bad", "fixed_in", "onset", "fix")), "state": NA},
        "off": {
            **dict.fromkeys(("first_bad", "last_good", "last_bad", "fixed_in", "onset", "fix")),
            "state": "not run",
        },
    }
    page = atlas.render(partial)
    row = page[page.index('<tr id="avx512_bug">') :].split("</tr>")[0]
    assert row.count('class="cell" data-state="not applicable"') == 3 and "not applicable here" in row
    assert "on: not applicable here; off: not run" in row and "never diverged" not in row
    assert "oneDNN off: not run." in page
    assert f'data-machines="{ZEN3_LABEL}"' in row


def test_suggest_on_a_partial_matrix_proposes_no_narrowing():
    _, partial = full_and_partial()
    lines = atlas.suggestions(partial)
    assert lines[0] == "versions run: oneDNN on: 2.15, 2.16, 2.21; oneDNN off: not run"
    assert [line for line in lines if "<- update" in line] == []
    (line,) = [line for line in lines if line.startswith("avx512_bug")]
    assert "measured not applicable here" in line and "nightly: not run" in line


def test_a_partial_matrix_merged_with_a_full_one_gives_the_full_ones_ranges():
    full, partial = full_and_partial()
    for sources in ([("full", full), ("partial", partial)], [("partial", partial), ("full", full)]):
        merged = atlas.merge(sources)
        for i, entry in by_id(merged).items():
            assert entry["measured"] == by_id(full)[i]["measured"], i
            assert entry["onset"] == by_id(full)[i]["onset"], i
    assert set(merged["machines"]) == {ZEN4_LABEL, ZEN3_LABEL} and merged["registry"] == "r1"
    cell = by_id(merged)["avx512_bug"]["cells"]["tf2.16-onednn-on"]
    assert cell["state"] == "diverges"
    assert cell["text"] == f"diverges ({ZEN4_LABEL}), not applicable ({ZEN3_LABEL})"
    assert [m["machine"] for m in cell["measurements"]] == [ZEN3_LABEL, ZEN4_LABEL]
    only_full = by_id(merged)["old_bug"]["cells"]["tf2.13-onednn-on"]
    assert [m["machine"] for m in only_full["measurements"]] == [ZEN4_LABEL] and only_full["text"] == "diverges"
    col = next(c for c in merged["columns"] if c["key"] == "tf2.15-onednn-on")
    assert sorted(r["machine"] for r in col["runs"]) == sorted([ZEN3_LABEL, ZEN4_LABEL])
    assert (
        merged["per_version"]["tf2.15-onednn-on"]["conv2d"]["xfailed"] == 2 + 2
    )  # old_bug and fixed_bug, on each machine
    page = atlas.render(merged)
    assert "diverges (AMD EPYC 9B14 (avx512_core)), not applicable (AMD EPYC 7B13 (avx2))" in page


def test_a_column_one_machine_ran_and_another_did_not_is_measured_by_the_one():
    full, partial = full_and_partial()
    merged = atlas.merge([("partial", partial), ("full", full)])
    cell = by_id(merged)["late_bug"]["cells"]["tf2.18-onednn-on"]
    assert [m["machine"] for m in cell["measurements"]] == [ZEN4_LABEL] and cell["state"] == "diverges"
    keys = [c["key"] for c in merged["columns"]]
    assert keys == [f"tf{v}-onednn-on" for v in FULL] + [f"tf{v}-onednn-off" for v in FULL]


def test_merging_an_atlas_again_keeps_one_measurement_per_machine():
    full, partial = full_and_partial()
    merged = atlas.merge([("full", full), ("partial", partial)])
    again = atlas.merge([("merged", merged), ("partial", partial)])
    assert again["divergences"] == merged["divergences"] and again["per_version"] == merged["per_version"]
    assert len(again["changes"]) == len(merged["changes"])


def test_a_newer_tensorflow_of_the_same_column_and_machine_replaces_the_older():
    def nightly(dev, state):
        cols, runs = matrix({("nightly", "1"): [old_bug(state)]})
        cols[0]["tensorflow"] = f"2.23.0.dev{dev}"
        runs[cols[0]["key"]] = run(cols[0]["tensorflow"], "1", old_bug(state), machine=ZEN4)
        return json.loads(atlas.dumps(atlas.build(cols, runs, KNOWN[:1])))

    older, newer = nightly(20261026, "diverges"), nightly(20261027, "agrees")
    for sources in ([("a", older), ("b", newer)], [("b", newer), ("a", older)]):
        entry = atlas.merge(sources)["divergences"][0]
        (m,) = entry["cells"]["tfnightly-onednn-on"]["measurements"]
        assert m["tensorflow"] == "2.23.0.dev20261027" and entry["open_in_nightly"] is False


def test_atlases_of_different_registries_are_not_merged_unless_asked():
    full, partial = full_and_partial()
    other = {**partial, "registry": "r2"}
    with pytest.raises(atlas.AtlasError, match=r"different registries \(cases/ fingerprints\): r1 in full; r2 in p"):
        atlas.merge([("full", full), ("p", other)])
    merged = atlas.merge([("full", full), ("p", other)], allow_different_registries=True)
    assert merged["registry"] is None and "different registries" in merged["warnings"][0]
    assert "different registries" in atlas.render(merged)


def test_an_entry_only_one_atlas_has_is_not_run_in_the_others_columns():
    full, partial = full_and_partial()
    fewer = json.loads(
        atlas.dumps(atlas.build(*machine_run(PARTIAL, ("1",), ZEN3), [d for d in KNOWN2 if d["id"] != "late_bug"]))
    )
    merged = atlas.merge([("full", full), ("fewer", {**fewer, "registry": "r0"})], allow_different_registries=True)
    assert len(by_id(merged)) == len(KNOWN2)
    only = atlas.merge([("fewer", fewer), ("partial", {**partial, "registry": None})], allow_different_registries=True)
    # late_bug is in the second atlas only: measured where it ran, not run nowhere else
    assert by_id(only)["late_bug"]["measured"]["versions"] == {"2.15": A, "2.16": A, "2.21": D}


def test_a_schema_1_atlas_is_read_as_its_one_machine_measured_it():
    old = {
        "schema": 1,
        "registry": "r1",
        "generated": "2026-01-01",
        "machine": {**ZEN4, "cpu_vendor": "AuthenticAMD"},
        "columns": [column("2.15", "1"), column("2.16", "1")],
        "divergences": [
            {
                "id": "old_bug",
                "declared": ">=2.13",
                "cells": {
                    "tf2.15-onednn-on": {"state": "agrees", "diverges": 0, "agrees": 1, "other": 0},
                    "tf2.16-onednn-on": {"state": "diverges", "diverges": 2, "agrees": 0, "other": 0},
                },
                "onset": {},
                "measured": ">=2.16",
                "open_in_nightly": None,
            }
        ],
        "new": [],
        "per_version": {},
        "changes": [],
    }
    upgraded = atlas.upgrade(old)
    entry = upgraded["divergences"][0]
    assert upgraded["schema"] == atlas.SCHEMA and list(upgraded["machines"]) == [ZEN4_LABEL]
    assert entry["cells"]["tf2.16-onednn-on"]["measurements"][0]["machine"] == ZEN4_LABEL
    assert entry["measured"]["range"] == ">=2.16" and entry["onset"]["on"]["onset"] == "2.16"
    _, partial = full_and_partial()
    assert by_id(atlas.merge([("old", old), ("partial", partial)]))["old_bug"]["measured"]["versions"]["2.15"] == D
    with pytest.raises(atlas.AtlasError, match="x.json: atlas schema 9: expected 1 or 2"):
        atlas.upgrade({**old, "schema": 9}, "x.json")


def test_an_onset_after_versions_that_were_not_run_names_the_last_good_one():
    cols, runs = matrix({("2.16", "1"): [old_bug("agrees")], ("2.21", "1"): [old_bug("diverges")]})
    measured_ = atlas.build(cols, runs, KNOWN)["divergences"][0]["measured"]
    assert measured_["text"] == "2.21 (last good 2.16), open" and measured_["last_good"] == "2.16"
    cols, runs = matrix({("2.20", "1"): [old_bug("agrees")], ("2.21", "1"): [old_bug("diverges")]})
    assert atlas.build(cols, runs, KNOWN)["divergences"][0]["measured"]["text"] == "2.21, open"
