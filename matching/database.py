"""Built-in database of known crystal polymorphs, read from TOML files shipped with the package.

A relaxed product is only useful to a scientist once it has a name ("anatase", "kappa-Al2O3"), so the
pipeline compares every product with the known polymorphs of its composition. Those reference structures
live in ``matching/data/polymorphs/<Formula>.toml`` (one file per reduced formula, pymatgen spelling),
one ``[[polymorph]]`` table per entry, written as the published space group, lattice and Wyckoff sites
so that every number can be checked against the cited source. Plain TOML keeps the data reviewable
and the diffs small; the structures are generated here with pymatgen.

Coordinates written as 6-decimal fractions (0.333333, 0.041667) are snapped to the exact fraction, as CIF
readers do, so that special positions generate clean orbits. Loading validates what can be validated
cheaply, because a wrong origin choice or a mistyped coordinate produces a structure that still *looks*
fine until it silently fails to match anything:

* every site must generate exactly as many atoms as its Wyckoff multiplicity (catches origin-choice
  mistakes such as ``I4_1/amd`` origin 1 vs 2, which turns anatase into a 24-atom cell);
* the setting symbol must belong to the recorded space-group number (except ``P1`` full cells,
  whose recorded number is checked against spglib by the test-suite);
* the built composition must reduce to the file's formula, with no two atoms closer than 0.5 A;
* names are unique within a formula and exactly one entry is the ground state;
* ``close_to`` (entries related by a small displacive distortion, which the product matcher cannot
  tell apart, so identification separates them by space group) names other entries of the same file.
"""

from __future__ import annotations

import functools
import tomllib
from importlib.resources.abc import Traversable
from typing import Any

from pymatgen.core import Composition, Element, Lattice, Structure
from pymatgen.symmetry.groups import SpaceGroup

from amorph.matching.database_index import data_dir, known_formulas, polymorph_names
from amorph.matching.polymorph import Polymorph

__all__ = ["Polymorph", "ground_state", "known_formulas", "known_polymorphs", "polymorph_names", "reduced_formula"]

_LATTICE_KEYS = ("a", "b", "c", "alpha", "beta", "gamma")
_REQUIRED_KEYS = ("name", "spacegroup", "spacegroup_number", "setting", "lattice", "sites", "source")
# Orbits of special positions are deduplicated with this tolerance (fractional units).
_ORBIT_TOL = 1e-4
# TOML has no fractions: a coordinate within this distance of a multiple of 1/24 (1/2, 1/3, 1/4, 1/6, 1/8,
# 1/12, 1/24) is snapped to it, so "0.333333" generates exactly the same orbit as 1/3 would.
_SNAP_DENOMINATOR = 24
_SNAP_TOL = 1e-5
# Generated atoms closer than this (A) mean duplicated sites, i.e. a broken entry.
_MIN_SEPARATION = 0.5


def reduced_formula(formula: str) -> str:
    """Normalise a formula ("O2Ti", "Ti4O8") to pymatgen's reduced formula ("TiO2"), the database key.

    Raises ValueError for strings that are not a formula of real elements, so that a typo is reported
    instead of silently finding no polymorphs.
    """
    try:
        composition = Composition(formula)
    except Exception as exc:  # pymatgen raises several types for malformed input
        raise ValueError(f"not a chemical formula: {formula!r}") from exc
    if not composition or not all(isinstance(el, Element) for el in composition.elements):
        raise ValueError(f"not a chemical formula of real elements: {formula!r}")
    return composition.reduced_formula


def _data_dir() -> Traversable:
    return data_dir()


def known_polymorphs(formula: str) -> list[Polymorph]:
    """All known polymorphs of a formula in file order (ground state first by convention); [] if none.

    The formula is normalised first, so "O2Ti" and "TiO2" give the same entries. The parsed list is
    cached per reduced formula because generating the structures costs noticeable time.
    """
    return list(_load(reduced_formula(formula)))


def ground_state(formula: str) -> Polymorph | None:
    """The entry marked as the ambient-pressure ground state, or None when the formula is unknown."""
    for polymorph in known_polymorphs(formula):
        if polymorph.ground_state:
            return polymorph
    return None


@functools.cache
def _load(formula: str) -> tuple[Polymorph, ...]:
    """Parse and build every entry of one formula's file (cached; a tuple so callers cannot mutate it)."""
    path = _data_dir().joinpath(f"{formula}.toml")
    if not path.is_file():
        return ()
    where = f"polymorph file {formula}.toml"
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ValueError(f"{where}: invalid TOML: {exc}") from exc
    declared = data.get("formula")
    if declared is None or reduced_formula(str(declared)) != formula:
        raise ValueError(f"{where}: 'formula = {declared!r}' does not reduce to {formula!r} (the file name)")
    entries = data.get("polymorph", [])
    if not entries:
        raise ValueError(f"{where}: no [[polymorph]] entries")

    polymorphs = tuple(_build_entry(formula, entry, where) for entry in entries)

    names = [p.name for p in polymorphs]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"{where}: duplicate polymorph names {duplicates}")
    for p in polymorphs:
        strangers = sorted(set(p.close_to) - set(names) | ({p.name} & set(p.close_to)))
        if strangers:
            raise ValueError(f"{where}, entry {p.name!r}: close_to names no other entry of the file: {strangers}")
    n_ground = sum(p.ground_state for p in polymorphs)
    if n_ground != 1:
        raise ValueError(f"{where}: {n_ground} entries have ground_state = true; exactly one must")
    return polymorphs


def _build_entry(formula: str, entry: dict[str, Any], where: str) -> Polymorph:
    """Validate one [[polymorph]] table and generate its structure."""
    name = str(entry.get("name", "<unnamed>"))
    here = f"{where}, entry {name!r}"
    missing = [key for key in _REQUIRED_KEYS if key not in entry]
    if missing:
        raise ValueError(f"{here}: missing keys {missing}")
    if name != name.lower() or not name.strip():
        raise ValueError(f"{here}: names must be non-empty and lowercase")

    setting = str(entry["setting"])
    try:
        space_group = SpaceGroup(setting)
    except Exception as exc:
        raise ValueError(f"{here}: pymatgen does not know the setting {setting!r}") from exc
    number = int(entry["spacegroup_number"])
    if setting != "P1" and space_group.int_number != number:
        raise ValueError(
            f"{here}: setting {setting!r} is space group {space_group.int_number}, "
            f"but spacegroup_number = {number}"
        )

    lattice = _lattice(entry["lattice"], space_group.int_number, here)
    species: list[str] = []
    coords: list[list[float]] = []
    for i, site in enumerate(entry["sites"]):
        element, xyz, wyckoff = _site(site, f"{here}, site {i}")
        multiplicity = int("".join(ch for ch in wyckoff if ch.isdigit()) or 0)
        orbit = space_group.get_orbit(xyz, tol=_ORBIT_TOL)
        if len(orbit) != multiplicity:
            raise ValueError(
                f"{here}, site {i} ({element} {wyckoff} {xyz}): generates {len(orbit)} atoms in {setting!r} "
                f"but Wyckoff {wyckoff} has multiplicity {multiplicity}: wrong origin choice or coordinates?"
            )
        species.append(element)
        coords.append(xyz)

    structure = Structure.from_spacegroup(setting, lattice, species, coords, tol=_ORBIT_TOL)
    if not structure.is_valid(tol=_MIN_SEPARATION):
        raise ValueError(f"{here}: atoms closer than {_MIN_SEPARATION} A (duplicated or overlapping sites)")
    built = structure.composition.reduced_formula
    if built != formula:
        raise ValueError(f"{here}: the built structure is {built}, not {formula}")

    return Polymorph(
        formula=formula,
        name=name,
        mineral=str(entry.get("mineral", "")),
        spacegroup_symbol=str(entry["spacegroup"]),
        spacegroup_number=number,
        structure=structure,
        source=str(entry["source"]),
        ground_state=bool(entry.get("ground_state", False)),
        approximant=bool(entry.get("approximant", False)),
        note=str(entry.get("note", "")),
        close_to=tuple(str(other) for other in entry.get("close_to", ())),
    )


def _lattice(params: dict[str, Any], sg_number: int, here: str) -> Lattice:
    """Complete the lattice parameters the crystal system fixes (b = a, 90/120 degree angles, ...)."""
    unknown = sorted(set(params) - set(_LATTICE_KEYS))
    if unknown:
        raise ValueError(f"{here}: unknown lattice keys {unknown}")
    p = {key: float(value) for key, value in params.items()}
    if sg_number >= 195:  # cubic
        defaults = {"b": p.get("a"), "c": p.get("a"), "alpha": 90.0, "beta": 90.0, "gamma": 90.0}
    elif sg_number >= 143:  # trigonal and hexagonal (rhombohedral groups in hexagonal axes)
        defaults = {"b": p.get("a"), "alpha": 90.0, "beta": 90.0, "gamma": 120.0}
    elif sg_number >= 75:  # tetragonal
        defaults = {"b": p.get("a"), "alpha": 90.0, "beta": 90.0, "gamma": 90.0}
    elif sg_number >= 16:  # orthorhombic
        defaults = {"alpha": 90.0, "beta": 90.0, "gamma": 90.0}
    elif sg_number >= 3:  # monoclinic, unique axis b
        defaults = {"alpha": 90.0, "gamma": 90.0}
    else:  # triclinic, including P1 full cells: everything must be given
        defaults = {}
    for key, value in defaults.items():
        if value is not None:
            p.setdefault(key, value)
    missing = [key for key in _LATTICE_KEYS if key not in p]
    if missing:
        raise ValueError(f"{here}: lattice needs {missing} for space group {sg_number}")
    return Lattice.from_parameters(p["a"], p["b"], p["c"], p["alpha"], p["beta"], p["gamma"])


def _snap(x: float) -> float:
    """Replace a decimal that spells a simple fraction (0.333333, 0.041667) by the fraction itself."""
    k = round(x * _SNAP_DENOMINATOR)
    return k / _SNAP_DENOMINATOR if abs(x * _SNAP_DENOMINATOR - k) < _SNAP_TOL * _SNAP_DENOMINATOR else x


def _site(site: dict[str, Any], here: str) -> tuple[str, list[float], str]:
    """Check one site table: a real element, three fractional coordinates and a Wyckoff label."""
    try:
        element = str(site["element"])
        xyz = [float(x) for x in site["xyz"]]
        wyckoff = str(site["wyckoff"])
    except (KeyError, TypeError, ValueError) as exc:
        raise ValueError(f"{here}: needs element, wyckoff and xyz") from exc
    if len(xyz) != 3:
        raise ValueError(f"{here}: xyz must have three coordinates")
    xyz = [_snap(x) for x in xyz]
    try:
        Element(element)
    except ValueError as exc:
        raise ValueError(f"{here}: unknown element {element!r}") from exc
    return element, xyz, wyckoff
