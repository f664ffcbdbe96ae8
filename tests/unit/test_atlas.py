"""harness.reports.atlas on hand-made matrix runs: cell states, onsets and fixes, measured ranges, new groups."""

import pytest

from harness.reports import atlas
from harness.reports.results import Run

KNOWN = [
    {"id": "old_bug", "tensorflow_versions": ">=2.21,<2.22", "strict": "per_case", "tensorflow_does": ["wrong_values"]},
    {"id": "new_bug", "tensorflow_versions": ">=2.21,<2.22", "strict": "per_case", "tensorflow_does": ["aborts"]},
    {"id": "onednn_only", "tensorflow_versions": ">=2.21,<2.22", "strict": "per_case", "tensorflow_does": ["aborts"]},
]


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


def run(version, onednn, *records):
    return Run(
        {"tensorflow": version, "onednn": onednn, "cpu_model": "test CPU"}, {"registry": "r1"}, [], list(records)
    )


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
    )
    cells = atlas.cells(r, KNOWN)
    assert [cells[i]["state"] for i in ("old_bug", "new_bug", "onednn_only")] == [
        "diverges",
        "errors",
        "not applicable",
    ]
    assert cells["new_bug"] == {"state": "errors", "diverges": 0, "agrees": 1, "other": 1, "shadowed": 0}
    assert atlas.cells(run("2.17.1", "1", old_bug("agrees")), KNOWN[:1])["old_bug"]["state"] == "agrees"


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
    assert entry["measured"] == ">=2.18,<2.19" and entry["onset"]["on"]["fixed_in"] == "2.19"
    assert not any(
        line.endswith("<- update")
        for line in atlas.suggestions(
            {**atlas.build(cols, runs, [{**KNOWN[0], "tensorflow_versions": "<2.19,>=2.18"}])}
        )
        if "old_bug" in line
    )


def test_an_onset_and_a_fix_are_read_off_and_become_the_measured_range():
    states = {"2.13": "agrees", "2.14": "diverges", "2.15": "diverges", "2.16": "agrees", "2.17": "agrees"}
    cols, runs = matrix({(s, "1"): [old_bug(st)] for s, st in states.items()})
    built = atlas.build(cols, runs, KNOWN)
    entry = built["divergences"][0]
    assert entry["onset"]["on"] == {"first_bad": "2.14", "last_good": "2.13", "last_bad": "2.15", "fixed_in": "2.16"}
    assert entry["onset"]["off"]["first_bad"] is None
    assert entry["measured"] == ">=2.14,<2.16" and entry["open_in_nightly"] is None


def test_a_divergence_open_in_nightly_has_no_upper_bound():
    states = {"2.20": "diverges", "2.21": "diverges", "nightly": "diverges"}
    cols, runs = matrix({(s, "1"): [old_bug(st)] for s, st in states.items()})
    entry = atlas.build(cols, runs, KNOWN)["divergences"][0]
    assert entry["measured"] == ">=2.20" and entry["open_in_nightly"] is True


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
    assert entry["measured"] == ">=2.15,!=2.16.*"


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
    assert "pip has no" in atlas.render(built)


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
    assert built["per_version"]["tf2.16-onednn-on"] == {"conv2d": {"failed": 1}}  # the entry applied: explained
    lines = atlas.suggestions(built)
    assert lines[0] == "versions run: 2.16, 2.17"
    assert any(line.startswith("old_bug") and "measured >=2.17" in line and "<- update" in line for line in lines)


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
    assert entry["measured"] == ">=2.20,<2.23" and entry["open_in_nightly"] is False


def test_a_divergence_new_in_nightly_starts_at_its_pre_releases():
    cols, runs = matrix({("2.21", "1"): [old_bug("agrees")], ("nightly", "1"): [old_bug("diverges")]})
    next(c for c in cols if c["spec"] == "nightly")["tensorflow"] = "2.23.0-dev20261026"
    entry = atlas.build(cols, runs, KNOWN)["divergences"][0]
    assert entry["measured"] == ">=2.23.0.dev0" and entry["open_in_nightly"] is True
    assert entry["onset"]["on"] == {
        "first_bad": "nightly",
        "last_good": "2.21",
        "last_bad": "nightly",
        "fixed_in": None,
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
