"""Where the registry is: the case folders a run reads, and the known-divergence files that apply to them.

The harness ships its registry: the cases and ``known_divergences.yaml`` of the repository's ``cases/`` folder.
From a source checkout (an editable install) that folder is read where it is; a wheel carries a copy as package
data (``harness/_registry/cases/``, put there by ``setup.py`` at build time). Either way its files are named
``cases/<file>`` in case ids, so an id means the same case in this repository and in a user's.

A user adds case folders of their own (``pytest --cases DIR``, the ``harness_cases`` ini option, ``harness verify
FILES``): they are read besides the shipped registry, never instead of it. Their files are named relative to the
user's root (pytest's rootdir). A ``known_divergences.yaml`` at the top of a user's folder extends the shipped
entries; the shipped entries always apply, whether or not the shipped cases are collected, since they describe
TensorFlow, not the cases.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from harness.registry.cases import DIVERGENCES_FILE

FOLDER = "cases"  # the shipped registry's folder, and the default name of a user's
PACKAGED_ROOT = Path(__file__).resolve().parents[1] / "_registry"  # a wheel's copy: harness/_registry/cases/
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # a source checkout: the directory holding harness/ and cases/
CASE_SUFFIXES = (".yaml", ".yml")


def case_files_under(directory: Path) -> list[Path]:
    """Every YAML case file below ``directory``, sorted."""
    return sorted(p for p in Path(directory).rglob("*") if p.suffix in CASE_SUFFIXES and p.is_file())


def default_folders(root: Path) -> list[str]:
    """The user's case folders when nothing names them: ``<root>/cases`` if there is one."""
    return [FOLDER] if (Path(root) / FOLDER).is_dir() else []


class RegistryError(ValueError):
    """A case folder that cannot be used (missing, not a folder, or clashing with another): the message names it."""


def shipped_root() -> Path:
    """The directory whose ``cases/`` folder is the shipped registry: the wheel's package data, else the source
    checkout this package was imported from."""
    for root in (PACKAGED_ROOT, SOURCE_ROOT):
        if (root / FOLDER / DIVERGENCES_FILE).is_file():
            return root
    raise RegistryError(
        f"the harness's own registry is missing (looked for {PACKAGED_ROOT / FOLDER} and {SOURCE_ROOT / FOLDER}): "
        f"reinstall tf-conv-harness"
    )


@dataclass(frozen=True)
class CaseFolder:
    """One folder of YAML case files.

    ``path``: the folder; ``root``: the directory case ids are relative to (``cases/seeds.yaml`` for the shipped
    registry); ``shipped``: the registry that ships with the harness.
    """

    path: Path
    root: Path
    shipped: bool = False

    def contains(self, file: Path) -> bool:
        return Path(file).resolve().is_relative_to(self.path)

    def name_of(self, file: Path) -> str:
        """The file as case ids name it (``cases/seeds.yaml``)."""
        return Path(file).resolve().relative_to(self.root).as_posix()

    def files(self) -> list[Path]:
        """Every case file of the folder, sorted (the order pytest collects them in)."""
        return case_files_under(self.path)

    @property
    def divergence_file(self) -> Path | None:
        path = self.path / DIVERGENCES_FILE
        return path if path.is_file() else None


SHIPPED_MODES = ("cases", "divergences", "none")
# cases: the shipped cases are collected and its known divergences apply (this repository's own runs);
# divergences: only its known divergences apply, to the user's cases (a user's repository, the default);
# none: neither (a self-contained registry whose folders carry their own known_divergences.yaml).


@dataclass(frozen=True)
class Registry:
    """The case folders of a run and how the shipped registry takes part (``shipped_mode``, one of
    ``SHIPPED_MODES``)."""

    shipped: CaseFolder
    user: tuple[CaseFolder, ...] = ()
    shipped_mode: str = "cases"

    @property
    def folders(self) -> tuple[CaseFolder, ...]:
        """Every folder whose files and known divergences take part, the shipped one first when it does."""
        return self.user if self.shipped_mode == "none" else (self.shipped, *self.user)

    @property
    def collected(self) -> tuple[CaseFolder, ...]:
        """The folders a run without file arguments collects."""
        return (self.shipped, *self.user) if self.shipped_mode == "cases" else self.user

    def folder_of(self, file: Path) -> CaseFolder | None:
        """The folder a case file belongs to (the innermost, if folders nest), or None."""
        inside = [f for f in self.folders if f.contains(file)]
        return max(inside, key=lambda f: len(f.path.parts)) if inside else None

    def divergence_files(self) -> list[tuple[Path, Path]]:
        """``(file, root)`` of every known-divergence file: the shipped one first, then each user folder's."""
        return [(f.divergence_file, f.root) for f in self.folders if f.divergence_file is not None]

    def files(self) -> list[Path]:
        """Every case file of the collected folders."""
        return [p for folder in self.collected for p in folder.files()]

    def fingerprint(self) -> str:
        """A hash of every file of the collected folders (names and bytes): two runs with the same fingerprint ran
        the same cases, sweeps, lock and known divergences. (The shipped known divergences applied to a user's cases
        without the shipped cases are not in it: ``harness matrix`` cannot tell that mode from a pytest
        configuration it does not read, and must compute the same fingerprint as the runs.)"""
        digest = hashlib.sha256()
        for folder in self.collected:
            for path in sorted(p for p in folder.path.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
                # the shipped folder's files by their name inside it, as before user folders existed
                name = path.relative_to(folder.path).as_posix() if folder.shipped else folder.name_of(path)
                digest.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
        return digest.hexdigest()[:16]


def shipped_folder() -> CaseFolder:
    root = shipped_root()
    return CaseFolder((root / FOLDER).resolve(), root.resolve(), shipped=True)


def registry(root: Path, folders: Iterable[str | Path] = (), shipped: str = "cases") -> Registry:
    """The registry of a run rooted at ``root`` (pytest's rootdir, or the directory ``harness`` runs in), with the
    user's case ``folders`` (relative to ``root`` or absolute) and the shipped registry's part (``SHIPPED_MODES``).

    A folder that is the shipped one (this repository's ``cases/``) is the shipped registry's cases, not repeated.
    Raises RegistryError naming a folder that does not exist, is not a directory, or whose files would have the same
    case ids as the collected shipped registry's.
    """
    if shipped not in SHIPPED_MODES:
        raise RegistryError(f"shipped registry mode {shipped!r}: expected one of {', '.join(SHIPPED_MODES)}")
    shipped_ = shipped_folder()
    root = Path(root).resolve()
    user: list[CaseFolder] = []
    seen: set[Path] = set()
    for given in folders:
        path = (root / given).resolve()
        if path in seen:
            continue
        seen.add(path)
        if not path.exists():
            raise RegistryError(f"case folder {given!r}: no such directory ({path})")
        if not path.is_dir():
            raise RegistryError(f"case folder {given!r}: not a directory ({path})")
        if path == shipped_.path and shipped != "none":
            shipped = "cases"
            continue
        user.append(CaseFolder(path, root if path.is_relative_to(root) else path.parent))
    if shipped == "cases":
        names = {shipped_.name_of(p) for p in shipped_.files()} - {f"{FOLDER}/{DIVERGENCES_FILE}"}
        for folder in user:
            clashes = sorted({folder.name_of(p) for p in folder.files()} & names)
            if clashes:
                raise RegistryError(
                    f"case folder {folder.path}: {clashes[0]} would have the same case ids as the shipped registry's "
                    f"file of that name; rename it"
                )
    return Registry(shipped_, tuple(user), shipped)
