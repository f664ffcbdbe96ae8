"""Loading case files: YAML text to validated cases (``harness.registry.cases``), sweeps expanded
(``harness.registry.sweeps``), each file's cases parsed once per process and text.
"""

from __future__ import annotations

import functools
import hashlib
import os
import pickle
import sys
import tempfile
import time
from pathlib import Path

import yaml

from harness.registry import error_inputs, location, sweeps
from harness.registry.cases import DIVERGENCES_FILE, Case, CaseError, expand_symbolic, parse_case
from harness.registry.sweeps import SWEEP_ENV


def load_file(path: Path, root: Path | None = None) -> list[Case | CaseError]:
    """Every case of one YAML file, in order; malformed ones as CaseError entries.

    ``root`` makes file names relative (``cases/seeds.yaml``) in ids and messages.
    A file's cases are parsed once per process for each text of the file (and sweep mode): the plugin and several
    test modules load the same registry, and sweep expansion is most of collection time.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        return [CaseError(_file_name(path, root), None, None, f"cannot read: {exc}")]
    lock_path = None if root is None else Path(root) / "cases" / sweeps.LOCK_FILE
    try:
        lock_text = lock_path.read_text(encoding="utf-8") if lock_path is not None and lock_path.exists() else ""
    except OSError:
        lock_text = ""
    return list(
        _cached_parse(str(path), None if root is None else str(root), text, os.environ.get(SWEEP_ENV), lock_text)
    )


CACHE_ENV = "HARNESS_REGISTRY_CACHE"  # a directory for parsed files, or "off"; default: the user's cache directory
_CODE = ("conv", "ops", "registry")  # the harness's packages that parsing a case file runs


def _cache_dir() -> Path | None:
    setting = os.environ.get(CACHE_ENV)
    if setting == "off":
        return None
    if setting:
        return Path(setting)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tf-conv-harness" / "registry"


@functools.cache
def _code_fingerprint() -> bytes:
    """The source of the code that parses cases, and the versions its results' pickles depend on."""
    import numpy

    digest = hashlib.sha256(f"{sys.version}\0{numpy.__version__}\0{yaml.__version__}".encode())
    package = Path(__file__).resolve().parents[1]
    for path in sorted(p for name in _CODE for p in (package / name).glob("*.py")):
        digest.update(path.name.encode() + b"\0" + path.read_bytes())
    return digest.digest()


def _cached_parse(path_text: str, root_text: str | None, text: str, sweep_mode: str | None, lock_text: str):
    """``_parse_file``, also cached on disk across processes: expanding the sweeps takes seconds, and every pytest
    worker, test subprocess and ``harness`` command reads the same files. The key is every input of the parse and
    the source of the code that does it, so a hit is what parsing again would give. Off with $HARNESS_REGISTRY_CACHE
    ``off`` (the coverage and mutation runs turn it off: they must see the parsing code run)."""
    directory = _cache_dir()
    if directory is None:
        return _parse_file(path_text, root_text, text, sweep_mode, lock_text)
    digest = hashlib.sha256(_code_fingerprint())
    for part in (path_text, root_text or "", text, sweep_mode or "", lock_text):
        digest.update(part.encode() + b"\0")
    file = directory / f"{digest.hexdigest()}.pickle"
    try:
        return pickle.loads(file.read_bytes())
    except Exception:  # missing, or unreadable for any reason: parse again
        pass
    parsed = _parse_file(path_text, root_text, text, sweep_mode, lock_text)
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=directory, suffix=".tmp")
    except OSError:  # a read-only cache: the parse stands
        return parsed
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(parsed, f, protocol=pickle.HIGHEST_PROTOCOL)
        os.replace(tmp, file)  # readers never see half a file
    except Exception:  # a full disk, or an entry that does not pickle: the parse stands
        Path(tmp).unlink(missing_ok=True)
    _prune(directory)
    return parsed


CACHE_DAYS = 30


def _prune(directory: Path) -> None:
    """Forget parses written more than ``CACHE_DAYS`` ago (each registry edit leaves one per changed file)."""
    cutoff = time.time() - CACHE_DAYS * 86400
    for path in directory.glob("*.pickle"):
        try:
            if path.stat().st_mtime < cutoff:
                path.unlink()
        except OSError:  # another process pruned it first
            pass


def _file_name(path: Path, root: Path | None) -> str:
    """The file as ids and messages name it: relative to ``root`` when it is under it."""
    if root is not None and path.resolve().is_relative_to(Path(root).resolve()):
        return str(path.resolve().relative_to(Path(root).resolve()))
    return str(path)


@functools.lru_cache(maxsize=256)
def _parse_file(
    path_text: str, root_text: str | None, text: str, sweep_mode: str | None, lock_text: str = ""
) -> tuple[Case | CaseError, ...]:
    """load_file's work for one text of the file (``sweep_mode`` only keys the cache: sweeps read it themselves;
    ``lock_text``: cases/sweeps.lock, each sweep's recorded size)."""
    path = Path(path_text)
    file = _file_name(path, None if root_text is None else Path(root_text))
    try:
        doc = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        return (CaseError(file, None, None, f"YAML syntax error: {exc}"),)
    if doc is None:
        return ()
    if not isinstance(doc, dict):
        return (CaseError(file, None, None, "the file must be a mapping with 'cases' and/or 'sweeps'"),)
    # divergences: see harness.registry.divergences; error_inputs: harness.registry.error_inputs
    unknown = set(doc) - {"defaults", "cases", "sweeps", "divergences", "error_inputs"}
    if unknown:
        return (
            CaseError(
                file,
                None,
                sorted(unknown)[0],
                "unknown top-level field; allowed: defaults, cases, sweeps, divergences, error_inputs",
            ),
        )
    if "divergences" in doc and path.name != DIVERGENCES_FILE:
        return (CaseError(file, None, "divergences", f"known divergences belong in cases/{DIVERGENCES_FILE}"),)
    defaults = doc.get("defaults") or {}
    if not isinstance(defaults, dict) or not set(defaults) <= {"dtypes", "tags", "tolerance"}:
        return (CaseError(file, None, "defaults", "must be a mapping of dtypes, tags and/or tolerance"),)

    entries: list[Case | CaseError] = []
    raw_cases = doc.get("cases") or []
    raw_sweeps = doc.get("sweeps") or []
    raw_generated = doc.get("error_inputs") or []
    for key, value in (("cases", raw_cases), ("sweeps", raw_sweeps), ("error_inputs", raw_generated)):
        if not isinstance(value, list):
            return (CaseError(file, None, key, "must be a list"),)
    for i, raw in enumerate(raw_cases):
        try:
            entries.extend(expand_symbolic(parse_case(file, raw, i, defaults)))
        except CaseError as err:
            entries.append(err)
    try:
        locked = yaml.safe_load(lock_text) or {} if lock_text else {}
    except yaml.YAMLError:
        locked = {}
    for i, raw in enumerate(raw_sweeps):
        name = raw.get("name") if isinstance(raw, dict) else None
        entries.extend(sweeps.expand(file, raw, i, defaults, locked=locked.get(f"{file}::{name}")))
    for i, raw in enumerate(raw_generated):
        entries.extend(error_inputs.expand(file, raw, i))

    seen: set[str] = set()
    unique: list[Case | CaseError] = []
    for entry in entries:
        if isinstance(entry, Case):
            case_name = entry.name
            if case_name in seen:
                entry = CaseError(file, case_name, "name", "duplicate case name in this file")
            seen.add(case_name)
        unique.append(entry)
    return tuple(unique)


def computing_cases(files, root: Path | None = None) -> list[Case]:
    """The cases of ``files`` (default: every ``cases/**/*.yaml`` under ``root``) that compute a value.

    Error contracts, generated inputs, operands passed as written (``Case.computes``) and malformed entries are
    left out: for the checks (relations, mutants, backends) that exercise conventions, not argument validation.
    Raises FileNotFoundError naming the first missing file.
    """
    root = Path(root or Path.cwd())
    files = [Path(f) for f in files] or sorted((root / "cases").rglob("*.yaml"))
    for f in files:
        if not f.is_file():
            raise FileNotFoundError(f"no such case file: {f}")
    return [c for f in files for c in load_file(f, root) if isinstance(c, Case) and c.computes]


def fingerprint(root: Path) -> str:
    """The fingerprint (``location.Registry.fingerprint``) of the registry a run in ``root`` reads by default."""
    root = Path(root)
    return location.registry(root, location.default_folders(root), shipped="divergences").fingerprint()
