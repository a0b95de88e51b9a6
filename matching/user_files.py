"""Known polymorphs from the user's own files (`--db DIR` or `--db FILE.db`).

A directory of CIF / POSCAR / extxyz files, or an ASE database file. Each structure's name is its
`name` field (extxyz info, ASE db key) when it has one, else the file name; a multi-frame file adds
the frame number. Only structures of the requested formula are kept; `ground_state` may be given the
same way as `name` (true/false). Space groups are found with the same tolerance ladder as products.
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import TYPE_CHECKING

from amorph.errors import AmorphError, AmorphWarning

if TYPE_CHECKING:
    from ase import Atoms

    from amorph.matching.polymorph import Polymorph

STRUCTURE_SUFFIXES = {".cif", ".vasp", ".poscar", ".extxyz", ".xyz", ".json", ".traj"}
POSCAR_NAMES = ("POSCAR", "CONTCAR")


def is_structure_file(path: Path) -> bool:
    return path.suffix.lower() in STRUCTURE_SUFFIXES or path.name.upper().startswith(POSCAR_NAMES)


def check_source(path: Path) -> None:
    """Refuse a path that is neither a folder nor an ASE database before anything runs."""
    if path.is_dir():
        if not any(is_structure_file(p) for p in path.iterdir()):
            raise AmorphError(f"--db {path}: no CIF, POSCAR or extxyz files in this folder")
    elif path.is_file():
        if path.suffix.lower() != ".db":
            raise AmorphError(f"--db {path}: expected a folder of structure files or an ASE database (.db)")
    else:
        raise AmorphError(f"--db {path}: no such folder or file")


def _frames(path: Path) -> list[tuple[str, Atoms]]:
    """(name, atoms) for every structure in a folder or an ASE database."""
    if path.is_file():
        import ase.db

        out = []
        with ase.db.connect(path) as db:
            for row in db.select():
                atoms = row.toatoms()
                name = str(row.key_value_pairs.get("name", f"{path.stem}-{row.id}"))
                atoms.info["ground_state"] = row.key_value_pairs.get("ground_state", False)
                out.append((name, atoms))
        return out
    from ase.io import read

    out = []
    for file in sorted(p for p in path.iterdir() if p.is_file() and is_structure_file(p)):
        try:
            frames = read(file, index=":")
        except Exception as exc:  # ASE raises many types for malformed files
            # one bad file in a folder of many should not stop the run: skip it and say which
            _skip(path, file, str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)
            continue
        if not frames:
            _skip(path, file, "no structure in it")
            continue
        for k, atoms in enumerate(frames):
            default = file.stem if len(frames) == 1 else f"{file.stem}-{k + 1}"
            out.append((str(atoms.info.get("name", default)), atoms))
    return out


def _skip(folder: Path, file: Path, why: str) -> None:
    warnings.warn(AmorphWarning(f"--db {folder}: skipped {file.name}: {why}"), stacklevel=3)


def user_polymorphs(path: Path, formula: str) -> list[Polymorph]:
    """Structures of `formula` (reduced) found in the folder or database at `path`."""
    # imported here, not above: check_source runs before the CLI loads anything heavy
    from pymatgen.io.ase import AseAtomsAdaptor

    from amorph.matching.polymorph import Polymorph
    from amorph.matching.symmetry import find_symmetry

    check_source(path)
    polymorphs: list[Polymorph] = []
    seen: set[str] = set()
    for name, atoms in _frames(path):
        if not atoms.pbc.all() or atoms.cell.rank < 3:
            continue  # a molecule or a slab is not a crystal polymorph
        structure = AseAtomsAdaptor().get_structure(atoms)
        if structure.composition.reduced_formula != formula:
            continue
        base = label = name.strip().lower().replace(" ", "-") or "entry"
        copy = 1
        while label in seen:
            copy += 1
            label = f"{base}-{copy}"
        seen.add(label)
        sym = find_symmetry(structure)
        polymorphs.append(
            Polymorph(
                formula=formula,
                name=label,
                mineral="",
                spacegroup_symbol=sym.symbol,
                spacegroup_number=sym.number,
                structure=structure,
                source=f"user file in {path}",
                ground_state=str(atoms.info.get("ground_state", "")).lower() in ("true", "1"),
                origin=str(path),
            )
        )
    return polymorphs
