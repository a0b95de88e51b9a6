"""What the built-in database holds, read from its TOML files without building any structure and
without importing pymatgen: the formulas and each one's polymorph names (for `amorph db list`, which
must answer in under a second; matching.database builds the structures when a run needs them)."""

from __future__ import annotations

import tomllib
from importlib import resources
from importlib.resources.abc import Traversable


def data_dir() -> Traversable:
    """The folder of TOML files, found through importlib.resources so it works from an installed wheel."""
    return resources.files("amorph.matching").joinpath("data", "polymorphs")


def known_formulas() -> list[str]:
    """Sorted reduced formulas that have a data file."""
    folder = data_dir()
    if not folder.is_dir():
        return []
    return sorted(item.name.removesuffix(".toml") for item in folder.iterdir() if item.name.endswith(".toml"))


def polymorph_names(formula: str) -> list[tuple[str, bool]]:
    """(name, is the ground state) of each entry of a formula's file. A formula written otherwise than
    its file (O2Ti) is reduced first, which imports pymatgen; the file is validated when its polymorphs
    are loaded (matching.database.known_polymorphs), not here."""
    path = data_dir().joinpath(f"{formula}.toml")
    if not path.is_file():
        from amorph.matching.database import reduced_formula

        path = data_dir().joinpath(f"{reduced_formula(formula)}.toml")
    if not path.is_file():
        return []
    entries = tomllib.loads(path.read_text(encoding="utf-8")).get("polymorph", [])
    return [(str(e.get("name", "<unnamed>")), bool(e.get("ground_state", False))) for e in entries]
