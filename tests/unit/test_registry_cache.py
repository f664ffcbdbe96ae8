"""The parsed-registry cache on disk (harness.registry.loader): a hit is what parsing again gives, a changed file or
sweep mode is a miss, a damaged entry is parsed again, and "off" writes nothing."""

from __future__ import annotations

import pickle
import shutil

from support import CASES

from harness.registry import loader


def _ids(entries):
    return [getattr(e, "id", None) or str(e) for e in entries]


def _same(a, b) -> bool:
    """Equal cases (their operands are arrays, which == cannot compare as a whole)."""
    return pickle.dumps(a) == pickle.dumps(b)


def test_a_hit_is_what_parsing_gives_and_an_edit_is_a_miss(tmp_path, monkeypatch):
    monkeypatch.setenv(loader.CACHE_ENV, str(tmp_path / "cache"))
    source = tmp_path / "cases" / "seeds.yaml"
    source.parent.mkdir()
    shutil.copy(CASES / "seeds.yaml", source)
    first = loader.load_file(source, tmp_path)
    written = sorted((tmp_path / "cache").glob("*.pickle"))
    assert len(written) == 1
    loader._parse_file.cache_clear()  # as a new process: only the disk cache
    parse = loader._parse_file

    def must_not_parse(*args):
        raise AssertionError("parsed again: the cache was not read")

    monkeypatch.setattr(loader, "_parse_file", must_not_parse)
    assert _same(loader.load_file(source, tmp_path), first)
    monkeypatch.setattr(loader, "_parse_file", parse)
    source.write_text(source.read_text().replace("conv2d_same_2x5x5", "renamed_case", 1))
    assert "cases/seeds.yaml::renamed_case" in _ids(loader.load_file(source, tmp_path))
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 2
    monkeypatch.setenv("HARNESS_SWEEP", "full")  # the sweep mode is part of the key too
    loader.load_file(source, tmp_path)
    assert len(list((tmp_path / "cache").glob("*.pickle"))) == 3


def test_a_damaged_entry_is_parsed_again(tmp_path, monkeypatch):
    monkeypatch.setenv(loader.CACHE_ENV, str(tmp_path / "cache"))
    first = loader.load_file(CASES / "examples.yaml", CASES.parent)
    (entry,) = (tmp_path / "cache").glob("*.pickle")
    entry.write_bytes(b"not a pickle")
    loader._parse_file.cache_clear()
    assert _same(loader.load_file(CASES / "examples.yaml", CASES.parent), first)


def test_off_writes_nothing(tmp_path, monkeypatch):
    monkeypatch.setenv(loader.CACHE_ENV, "off")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert loader.load_file(CASES / "examples.yaml", CASES.parent)
    assert not list(tmp_path.rglob("*.pickle"))
