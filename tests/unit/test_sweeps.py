"""Sweep expansion (harness/registry/sweeps.py), through ``load_file``; no TensorFlow.

A sweep is a case template plus a grid of choices; every combination not
excluded becomes a case named ``<sweep>/<axis>=<label>/...``. Also loads every
real case file under cases/ and checks it is clean.
"""

import pytest
import yaml
from support import ROOT

from harness.registry.cases import Case, CaseError
from harness.registry.loader import load_file
from harness.registry.sweeps import covering_subset

FILE = "sweeps.yaml"


def template(name="grid", **grid) -> dict:
    """A conv2d sweep: a generated NHWC input and HWIO filter, with ``grid`` as given."""
    return {
        "name": name,
        "op": "conv2d",
        "inputs": {
            "input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": [1, 5, 5, 2]}},
            "filters": {"layout": "HWIO", "generate": {"dist": "normal", "shape": [3, 3, 2, 4]}},
        },
        "grid": grid,
    }


def load_sweeps(tmp_path, *sweeps, cases=()):
    path = tmp_path / FILE
    path.write_text(yaml.safe_dump({"cases": list(cases), "sweeps": list(sweeps)}, sort_keys=False), encoding="utf-8")
    return load_file(path, root=tmp_path)


def all_cases(entries) -> list[Case]:
    errors = [e for e in entries if not isinstance(e, Case)]
    assert errors == []
    return entries


def by_name(entries) -> dict[str, Case]:
    return {c.name: c for c in all_cases(entries)}


def only_error(entries) -> CaseError:
    assert len(entries) == 1 and isinstance(entries[0], CaseError), entries
    return entries[0]


def assert_error(err: CaseError, case: str, field: str, fragment: str) -> None:
    assert (err.file, err.case, err.field) == (FILE, case, field)
    text = str(err)
    assert FILE in text and repr(case) in text and f"field {field!r}" in text and fragment in text


SHAPES = [
    {"label": "b1", "set": {}},
    {"label": "b2", "set": {"inputs.input.generate.shape": [2, 5, 5, 2]}},
    {"label": "wide", "set": {"inputs.input.generate.shape": [1, 4, 9, 2]}},
]


# --- expansion ---------------------------------------------------------------------------


def test_every_combination_becomes_one_case(tmp_path):
    cases = all_cases(load_sweeps(tmp_path, template(padding=["SAME", "VALID"], strides=[1, 2], shape=SHAPES)))
    assert len(cases) == 2 * 2 * 3
    assert {c.sweep for c in cases} == {"grid"}
    assert {c.op for c in cases} == {"conv2d"}


def test_names_list_every_axis_in_grid_order(tmp_path):
    cases = all_cases(load_sweeps(tmp_path, template(padding=["SAME", "VALID"], strides=[1, 2])))
    assert [c.name for c in cases] == [
        "grid/padding=SAME/strides=1",
        "grid/padding=SAME/strides=2",
        "grid/padding=VALID/strides=1",
        "grid/padding=VALID/strides=2",
    ]


def test_names_are_unique_and_stable_when_choices_are_added(tmp_path):
    small = [
        c.name
        for c in all_cases(load_sweeps(tmp_path, template(padding=["SAME", "VALID"], strides=[1, 2], shape=SHAPES[:2])))
    ]
    again = [
        c.name
        for c in all_cases(load_sweeps(tmp_path, template(padding=["SAME", "VALID"], strides=[1, 2], shape=SHAPES[:2])))
    ]
    big = [
        c.name
        for c in all_cases(load_sweeps(tmp_path, template(padding=["SAME", "VALID"], strides=[1, 2, 3], shape=SHAPES)))
    ]

    assert small == again
    assert len(set(big)) == len(big)
    assert set(small) <= set(big)


def test_derived_seeds_are_stable_when_choices_are_added(tmp_path):
    """A generator without a seed gets one from the expanded case's name, so adding choices changes no data."""

    def input_seeds(entries):
        return {c.name: c.inputs["input"].generator.seed for c in all_cases(entries)}

    before = input_seeds(load_sweeps(tmp_path, template(padding=["SAME", "VALID"], strides=[1, 2])))
    after = input_seeds(load_sweeps(tmp_path, template(padding=["SAME", "VALID"], strides=[1, 2, 3])))
    assert before.items() <= after.items()


def test_plain_values_set_the_attribute_named_by_the_axis(tmp_path):
    cases = by_name(load_sweeps(tmp_path, template(padding=["SAME", "VALID"], strides=[1, 2])))
    assert cases["grid/padding=VALID/strides=2"].attrs == {"padding": "VALID", "strides": 2}
    assert cases["grid/padding=SAME/strides=1"].attrs == {"padding": "SAME", "strides": 1}


def test_label_value_choice_sets_the_attribute_under_its_label(tmp_path):
    explicit = {"label": "asym", "value": [[0, 0], [0, 2], [1, 0], [0, 0]]}
    cases = by_name(load_sweeps(tmp_path, template(padding=[explicit], strides=[{"value": [1, 2]}, 1])))

    assert set(cases) == {"grid/padding=asym/strides=[1,2]", "grid/padding=asym/strides=1"}
    case = cases["grid/padding=asym/strides=[1,2]"]
    assert case.attrs == {"padding": [[0, 0], [0, 2], [1, 0], [0, 0]], "strides": [1, 2]}


def test_set_choice_assigns_dotted_fields(tmp_path):
    shape = [
        {"label": "small", "set": {}},
        {
            "label": "big_f64",
            "set": {
                "inputs.input.generate.shape": [2, 7, 6, 2],
                "dtypes": ["float64"],
                "attrs.dilations": 2,
                "tags": ["slow"],
            },
        },
    ]
    cases = by_name(load_sweeps(tmp_path, template(padding=["SAME"], strides=[1], shape=shape)))
    small = cases["grid/padding=SAME/strides=1/shape=small"]
    big = cases["grid/padding=SAME/strides=1/shape=big_f64"]

    assert big.inputs["input"].generator.shape == (2, 7, 6, 2)
    assert big.dtypes == ("float64",)
    assert big.tags == ("slow",)
    assert big.attrs == {"padding": "SAME", "strides": 1, "dilations": 2}
    # the other choice, and the template shared by both, are untouched
    assert small.inputs["input"].generator.shape == (1, 5, 5, 2)
    assert small.dtypes == ("float32", "float64")
    assert small.attrs == {"padding": "SAME", "strides": 1}
    assert big.inputs["filters"].generator.shape == small.inputs["filters"].generator.shape == (3, 3, 2, 4)


def test_expanded_generators_get_distinct_seeds_unless_the_template_sets_one(tmp_path):
    sweep = template(padding=["SAME", "VALID"], strides=[1])
    sweep["inputs"]["filters"]["generate"]["seed"] = 5
    same, valid = all_cases(load_sweeps(tmp_path, sweep))

    assert same.inputs["input"].generator.seed != valid.inputs["input"].generator.seed
    assert same.inputs["filters"].generator.seed == valid.inputs["filters"].generator.seed == 5


def test_file_defaults_apply_to_expanded_cases(tmp_path):
    path = tmp_path / FILE
    path.write_text(
        yaml.safe_dump(
            {
                "defaults": {"dtypes": ["float16"], "tags": ["sweep"]},
                "sweeps": [template(padding=["SAME"], strides=[1])],
            }
        )
    )
    (case,) = all_cases(load_file(path, root=tmp_path))
    assert (case.dtypes, case.tags) == (("float16",), ("sweep",))


# --- exclude -----------------------------------------------------------------------------


def test_exclude_with_a_single_label(tmp_path):
    sweep = template(padding=["SAME", "VALID"], strides=[1, 2])
    sweep["exclude"] = [{"when": {"padding": "VALID", "strides": 2}, "reason": "not interesting"}]
    names = [c.name for c in all_cases(load_sweeps(tmp_path, sweep))]
    assert names == ["grid/padding=SAME/strides=1", "grid/padding=SAME/strides=2", "grid/padding=VALID/strides=1"]


def test_exclude_with_a_list_of_labels(tmp_path):
    sweep = template(
        padding=["SAME", "VALID", {"label": "asym", "value": [[0, 0], [0, 1], [1, 0], [0, 0]]}], strides=[1, 2]
    )
    sweep["exclude"] = [
        {"when": {"padding": ["VALID", "asym"], "strides": 2}, "reason": "stride 2 only with SAME"},
        {"when": {"padding": "asym"}, "reason": "asym left out entirely"},
    ]
    names = [c.name for c in all_cases(load_sweeps(tmp_path, sweep))]
    assert names == ["grid/padding=SAME/strides=1", "grid/padding=SAME/strides=2", "grid/padding=VALID/strides=1"]


def test_exclude_matches_set_choice_labels(tmp_path):
    sweep = template(padding=["SAME"], strides=[1, 2], shape=SHAPES)
    sweep["exclude"] = [{"when": {"shape": ["b2", "wide"], "strides": 1}, "reason": "big shapes at stride 2 only"}]
    names = [c.name for c in all_cases(load_sweeps(tmp_path, sweep))]
    assert names == [
        "grid/padding=SAME/strides=1/shape=b1",
        "grid/padding=SAME/strides=2/shape=b1",
        "grid/padding=SAME/strides=2/shape=b2",
        "grid/padding=SAME/strides=2/shape=wide",
    ]


def test_exclude_on_an_unknown_axis_is_an_error(tmp_path):
    sweep = template(padding=["SAME", "VALID"], strides=[1, 2])
    sweep["exclude"] = [{"when": {"stride": 2}, "reason": "typo in the axis name"}]
    err = only_error(load_sweeps(tmp_path, sweep))
    assert_error(err, "grid", "exclude[0].when.stride", "no grid axis 'stride'")


def test_exclude_with_an_unknown_label_is_an_error(tmp_path):
    sweep = template(padding=["SAME", "VALID"], strides=[1, 2])
    sweep["exclude"] = [{"when": {"padding": "VALD"}, "reason": "typo in the label"}]
    err = only_error(load_sweeps(tmp_path, sweep))
    assert_error(err, "grid", "exclude[0].when.padding", "no choice labelled 'VALD'")


def test_exclude_without_a_reason_is_an_error(tmp_path):
    sweep = template(padding=["SAME", "VALID"], strides=[1, 2])
    sweep["exclude"] = [{"when": {"strides": 2}, "reason": "fine"}, {"when": {"padding": "VALID"}}]
    err = only_error(load_sweeps(tmp_path, sweep))
    assert_error(err, "grid", "exclude[1]", "reason")


# --- malformed sweeps --------------------------------------------------------------------


def test_duplicate_labels_on_an_axis_are_an_error(tmp_path):
    sweep = template(padding=["SAME", {"label": "SAME", "value": [[0, 0], [1, 1], [1, 1], [0, 0]]}], strides=[1])
    err = only_error(load_sweeps(tmp_path, sweep))
    assert_error(err, "grid", "grid.padding", "distinct")


def test_empty_grid_is_an_error(tmp_path):
    err = only_error(load_sweeps(tmp_path, template()))
    assert_error(err, "grid", "grid", "missing field")


def test_empty_axis_is_an_error(tmp_path):
    err = only_error(load_sweeps(tmp_path, template(padding=["SAME"], strides=[])))
    assert_error(err, "grid", "grid.strides", "non-empty list")


def test_set_choice_without_label_is_an_error(tmp_path):
    err = only_error(
        load_sweeps(tmp_path, template(padding=["SAME"], strides=[1], shape=[{"set": {"dtypes": ["float64"]}}]))
    )
    assert_error(err, "grid", "grid.shape[0]", "label")


def test_sweep_without_name_is_an_error(tmp_path):
    sweep = template(padding=["SAME"], strides=[1])
    del sweep["name"]
    err = only_error(load_sweeps(tmp_path, sweep))
    assert_error(err, "sweep #0", "name", "a sweep is a mapping")


def test_a_bad_expanded_case_is_an_error_for_that_case_only(tmp_path):
    sweep = template(data_format=["NHWC", "NWHC", "NCHW"], padding=["SAME"], strides=[1])
    other = template("other", padding=["VALID"], strides=[1])
    plain = template("plain")
    del plain["grid"]
    plain["attrs"] = {"padding": "SAME", "strides": 1}

    entries = load_sweeps(tmp_path, sweep, other, cases=[plain])

    assert [e.name if isinstance(e, Case) else e.case for e in entries] == [
        "plain",
        "grid/data_format=NHWC/padding=SAME/strides=1",
        "grid/data_format=NWHC/padding=SAME/strides=1",
        "grid/data_format=NCHW/padding=SAME/strides=1",
        "other/padding=VALID/strides=1",
    ]
    assert [type(e) for e in entries] == [Case, Case, CaseError, Case, Case]
    assert_error(entries[2], "grid/data_format=NWHC/padding=SAME/strides=1", "attrs.data_format", "got 'NWHC'")


def test_a_set_choice_making_a_bad_case_is_an_error_for_that_case_only(tmp_path):
    dtypes = [{"label": "f32", "set": {"dtypes": ["float32"]}}, {"label": "i32", "set": {"dtypes": ["int32"]}}]
    entries = load_sweeps(tmp_path, template(padding=["SAME"], strides=[1], dtype=dtypes))

    assert [type(e) for e in entries] == [Case, CaseError]
    assert entries[0].name == "grid/padding=SAME/strides=1/dtype=f32"
    assert_error(entries[1], "grid/padding=SAME/strides=1/dtype=i32", "inputs.input", "int32 needs integer values")


# --- the real case files -----------------------------------------------------------------

CASE_FILES = sorted((ROOT / "cases").rglob("*.yaml"))


def test_there_are_real_case_files():
    assert len(CASE_FILES) >= 2
    assert ROOT / "cases" / "seeds.yaml" in CASE_FILES


@pytest.mark.parametrize("path", CASE_FILES, ids=[str(p.relative_to(ROOT)) for p in CASE_FILES])
def test_real_case_file_loads_cleanly(path):
    entries = load_file(path, root=ROOT)
    errors = [str(e) for e in entries if isinstance(e, CaseError)]
    assert errors == []
    names = [c.name for c in entries]
    assert names, f"{path} has no cases"
    assert len(names) == len(set(names))
    assert {c.file for c in entries} == {str(path.relative_to(ROOT))}


# --- covering sets ----------------------------------------------------------------------------


@pytest.mark.parametrize("sizes, seed", [((2, 3), 0), ((4, 4, 3), 1), ((6, 5, 4, 3, 2), 2), ((3, 3, 3, 3, 3, 3), 3)])
def test_the_covering_subset_contains_every_allowed_pair(sizes, seed):
    import itertools
    import random

    rng = random.Random(seed)
    combos = [c for c in itertools.product(*(range(n) for n in sizes)) if rng.random() > 0.2]  # some excluded
    chosen = covering_subset(combos, seed)
    assert chosen == covering_subset(combos, seed)  # deterministic
    picked = [combos[k] for k in chosen]

    def pairs(c):
        return {(i, c[i], j, c[j]) for i, j in itertools.combinations(range(len(c)), 2)}

    assert set().union(*map(pairs, combos)) <= set().union(*map(pairs, picked))
    assert {(i, c[i]) for c in combos for i in range(len(c))} <= {(i, c[i]) for c in picked for i in range(len(c))}
    assert len(picked) < len(combos) or len(sizes) == 2


def test_pairwise_sweeps_keep_their_ids_in_full_mode(tmp_path, monkeypatch):
    sweep = template(padding=["SAME", "VALID"], strides=[1, 2, 3], dilations=[1, 2])
    sweep["cover"] = "pairwise"
    monkeypatch.setenv("HARNESS_SWEEP", "pairwise")
    covering = {c.name for c in all_cases(load_sweeps(tmp_path, sweep))}
    monkeypatch.setenv("HARNESS_SWEEP", "full")
    full = {c.name for c in all_cases(load_sweeps(tmp_path, sweep))}
    assert covering < full and len(full) == 12


# --- filtering never hides a bug ------------------------------------------------------------------------------


def test_the_lock_records_every_sweeps_size_for_its_yaml():
    """cases/sweeps.lock is up to date: after adding or editing a sweep, run python -m harness.registry.sweeps --lock."""
    import yaml as _yaml
    from support import ROOT

    from harness.registry.sweeps import LOCK_FILE, lock

    recorded = _yaml.safe_load((ROOT / "cases" / LOCK_FILE).read_text(encoding="utf-8"))
    assert lock(ROOT) == recorded, "cases/sweeps.lock is stale: run python -m harness.registry.sweeps --lock"


DROPPING = {
    "name": "drops",
    "op": "conv2d",
    "drop_invalid_geometry": True,
    "attrs": {"strides": 1},
    "inputs": {
        "input": {"layout": "NHWC", "generate": {"dist": "normal", "shape": [1, 4, 4, 1]}},
        "filters": {"layout": "HWIO", "generate": {"dist": "normal", "shape": [3, 3, 1, 1]}},
    },
    "grid": {"padding": ["SAME", "VALID"], "dilations": [1, 2]},  # VALID with dilation 2: 5 taps over 4 pixels
}


def test_a_sweep_whose_unchanged_yaml_expands_to_another_size_fails_loudly(monkeypatch):
    from harness.registry import sweeps

    sizes = {}
    cases = sweeps.expand("f.yaml", DROPPING, 0, sizes=sizes)
    assert sizes["drops"] == sweeps.Size(combinations=4, excluded=0, dropped=1, kept=3)
    locked = {"yaml": sweeps.fingerprint(DROPPING, None), **sizes["drops"].as_dict()}
    assert sweeps.expand("f.yaml", DROPPING, 0, locked=locked) == cases
    monkeypatch.setattr(sweeps, "_fits", lambda case: case.attrs["padding"] == "SAME")  # a bug that drops more
    entries = sweeps.expand("f.yaml", DROPPING, 0, locked=locked)
    assert [e for e in entries if isinstance(e, Case)] == [c for c in cases if c.attrs["padding"] == "SAME"]
    err = entries[-1]
    assert isinstance(err, CaseError) and (err.case, err.field) == ("drops", "drop_invalid_geometry")
    assert "dropped 2" in str(err) and "dropped 1" in str(err)
    edited = {**DROPPING, "description": "edited"}  # another YAML: its size is not compared
    assert all(isinstance(e, Case) for e in sweeps.expand("f.yaml", edited, 0, locked=locked))


def test_kernel_fits_does_not_use_the_window_arithmetic_under_test(monkeypatch):
    """A bug in harness.conv.padding.window must make cases fail, not vanish from the sweeps."""
    from harness import ops
    from harness.conv import padding

    def broken(*args, **kwargs):
        raise ValueError("broken window")

    monkeypatch.setattr(padding, "window", broken)
    monkeypatch.setattr(padding, "windows", broken)
    spec = ops.get("conv2d")
    shapes = {"input": (1, 4, 4, 1), "filters": (3, 3, 1, 1)}
    assert ops.kernel_fits(spec, shapes, {"strides": 1, "padding": "VALID", "dilations": 1})
    assert not ops.kernel_fits(spec, shapes, {"strides": 1, "padding": "VALID", "dilations": 2})
    assert ops.kernel_fits(spec, shapes, {"strides": 1, "padding": [[0, 0], [1, 0], [0, 1], [0, 0]], "dilations": 2})
    assert ops.kernel_fits(spec, shapes, {"strides": 1, "padding": "SAME", "dilations": 3})
