"""Where the registry is (harness.registry.location): the shipped folder, the user's folders beside it, the modes,
the clashes, and the known divergences a user's folder adds (harness.registry.divergences.load_registry)."""

from __future__ import annotations

import pytest
import yaml
from support import CASES, ROOT

from harness.registry import divergences, location

CASE = {
    "name": "mine",
    "op": "conv2d",
    "attrs": {"strides": 1, "padding": "VALID"},
    "inputs": {"input": {"layout": "HW", "value": [[1, 2], [3, 4]]}, "filters": {"layout": "HW", "value": [[1]]}},
}


def _folder(tmp_path, name="cases", files=None):
    folder = tmp_path / name
    folder.mkdir(parents=True)
    for file, doc in (files or {"mine.yaml": {"cases": [CASE]}}).items():
        (folder / file).write_text(yaml.safe_dump(doc))
    return folder


def test_the_shipped_registry_is_this_checkouts_cases_folder():
    shipped = location.shipped_folder()
    assert shipped.path == CASES.resolve() and shipped.root == ROOT.resolve() and shipped.shipped
    assert shipped.name_of(CASES / "seeds.yaml") == "cases/seeds.yaml"
    assert (CASES / "known_divergences.yaml") in shipped.files()


def test_this_repositorys_cases_folder_is_the_shipped_one_not_a_second_folder():
    reg = location.registry(ROOT, ["cases"], shipped="divergences")
    assert reg.user == () and reg.shipped_mode == "cases" and reg.collected == (reg.shipped,)


@pytest.mark.parametrize(
    ("mode", "collected", "divergence_files"),
    [
        ("cases", ["cases", "mine"], ["cases", "mine"]),
        ("divergences", ["mine"], ["cases", "mine"]),
        ("none", ["mine"], ["mine"]),
    ],
)
def test_the_modes_say_what_is_collected_and_which_divergences_apply(tmp_path, mode, collected, divergence_files):
    _folder(tmp_path, "mine", {"a.yaml": {"cases": [CASE]}, "known_divergences.yaml": {"divergences": []}})
    reg = location.registry(tmp_path, ["mine"], shipped=mode)
    assert [f.path.name for f in reg.collected] == collected
    assert [path.parent.name for path, _ in reg.divergence_files()] == divergence_files
    assert reg.folder_of(tmp_path / "mine" / "a.yaml").name_of(tmp_path / "mine" / "a.yaml") == "mine/a.yaml"
    assert reg.folder_of(tmp_path / "elsewhere.yaml") is None


def test_bad_folders_are_clear_errors(tmp_path):
    with pytest.raises(location.RegistryError, match=r"case folder 'nope': no such directory"):
        location.registry(tmp_path, ["nope"])
    (tmp_path / "file.yaml").write_text("cases: []\n")
    with pytest.raises(location.RegistryError, match=r"case folder 'file.yaml': not a directory"):
        location.registry(tmp_path, ["file.yaml"])
    with pytest.raises(location.RegistryError, match=r"shipped registry mode 'all': expected one of cases, "):
        location.registry(tmp_path, [], shipped="all")


def test_a_user_file_named_like_a_shipped_one_clashes_only_while_the_shipped_cases_are_collected(tmp_path):
    _folder(tmp_path, files={"seeds.yaml": {"cases": [CASE]}, "known_divergences.yaml": {"divergences": []}})
    with pytest.raises(location.RegistryError, match=r"cases/seeds.yaml would have the same case ids as the shipped"):
        location.registry(tmp_path, ["cases"], shipped="cases")
    assert location.registry(tmp_path, ["cases"], shipped="divergences").user[0].path == tmp_path / "cases"


def test_a_users_known_divergences_extend_the_shipped_ones(tmp_path):
    shipped = divergences.load(CASES / "known_divergences.yaml", ROOT, scope=None)[0]
    entry = yaml.safe_load((CASES / "known_divergences.yaml").read_text())["divergences"][0]
    mine = {**entry, "id": "my_own_entry"}
    again = dict(entry)  # a shipped id, repeated
    _folder(tmp_path, files={"known_divergences.yaml": {"divergences": [mine, again]}})
    known, errors = divergences.load_registry(location.registry(tmp_path, ["cases"], shipped="divergences"))
    assert [d.id for d in known] == [d.id for d in shipped] + ["my_own_entry"]
    assert known[-1].file == "cases/known_divergences.yaml"
    (error,) = errors
    assert (error.file, error.case, error.field) == ("cases/known_divergences.yaml", entry["id"], "id")
    assert "already defined" in str(error)
    none, _ = divergences.load_registry(location.registry(tmp_path, ["cases"], shipped="none"))
    assert [d.id for d in none] == ["my_own_entry", entry["id"]]


def test_the_fingerprint_covers_the_collected_files(tmp_path):
    folder = _folder(tmp_path)
    reg = location.registry(tmp_path, ["cases"], shipped="none")
    before = reg.fingerprint()
    (folder / "mine.yaml").write_text((folder / "mine.yaml").read_text() + "\n")
    assert reg.fingerprint() != before
    assert location.registry(ROOT, ["cases"]).fingerprint() == location.registry(ROOT, []).fingerprint()
