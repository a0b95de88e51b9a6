"""Tests of the built-in polymorph database (matching.database and matching/data/polymorphs/*.toml).

Every entry is checked on its own (one test id per entry) for the mistakes that crystallographic data
typically carry: wrong origin choice, mistyped coordinates or cell edges, wrong space group, wrong
stoichiometry. Geometry checks are deliberately simple and robust: covalent-radius bounds for bonds,
metallic-radius bounds for metals, and cation coordination numbers per formula.
"""

from __future__ import annotations

import itertools
import tomllib
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Composition, Element, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from matching import database
from matching.database import Polymorph, ground_state, known_formulas, known_polymorphs, reduced_formula

DATA_DIR = Path(database.__file__).parent / "data" / "polymorphs"


def _entry_ids() -> list[tuple[str, str]]:
    """(formula, name) of every entry, read from the TOML files directly so collection never builds structures."""
    ids = []
    for path in sorted(DATA_DIR.glob("*.toml")):
        data = tomllib.loads(path.read_text(encoding="utf-8"))
        ids += [(path.stem, entry.get("name", "?")) for entry in data.get("polymorph", [])]
    return ids


ENTRIES = _entry_ids()
FORMULAS = sorted({formula for formula, _ in ENTRIES})


def _entry(formula: str, name: str) -> Polymorph:
    return next(p for p in known_polymorphs(formula) if p.name == name)


# The starter set promised by the issue: formula -> names that must be present.
REQUIRED = {
    "Cu": {"fcc", "hcp", "bcc"},
    "Fe": {"bcc", "fcc", "hcp"},
    "Ti": {"hcp", "bcc", "omega"},
    "Si": {"diamond", "beta-tin", "hexagonal-diamond"},
    "SiC": {"3c", "4h", "6h"},
    "TiO2": {"rutile", "anatase", "brookite", "columbite"},
    "ZrO2": {"monoclinic", "tetragonal", "cubic", "orthorhombic"},
    "SiO2": {"alpha-quartz", "alpha-cristobalite", "tridymite", "coesite"},
    "Al2O3": {"corundum", "theta", "kappa", "gamma"},
    "ZnO": {"wurtzite", "zincblende", "rocksalt"},
}
GROUND_STATES = {
    "Cu": "fcc",
    "Fe": "bcc",
    "Ti": "hcp",
    "Si": "diamond",
    "SiC": "6h",
    "TiO2": "rutile",
    "ZrO2": "monoclinic",
    "SiO2": "alpha-quartz",
    "Al2O3": "corundum",
    "ZnO": "wurtzite",
}

# Single-bond covalent radii (A), Cordero et al. 2008, Dalton Trans. 2832 (C: sp3).
COVALENT_RADIUS = {"C": 0.76, "O": 0.66, "Al": 1.21, "Si": 1.11, "Ti": 1.60, "Zn": 1.22, "Zr": 1.75}

# Compounds: (cation, anion, bond cutoff in A, allowed cation coordination numbers). The cutoffs sit in
# the gap between the first and second coordination shells of every entry of the formula.
COORDINATION = {
    "SiO2": ("Si", "O", 1.8, {4}),
    "SiC": ("Si", "C", 2.1, {4}),
    "TiO2": ("Ti", "O", 2.3, {6}),
    "Al2O3": ("Al", "O", 2.3, {4, 6}),
    "ZrO2": ("Zr", "O", 2.6, {7, 8}),
    "ZnO": ("Zn", "O", 2.4, {4, 6}),
}

# Pairs of entries that are distinct phases but related by a small displacive distortion, so the loose
# matcher below (the one used to name products) cannot tell them apart. They must differ in space group,
# which is what identification falls back on (same-space-group candidates are tried first).
KNOWN_CLOSE_PAIRS = {
    ("Ti", frozenset({"bcc", "omega"})): "omega = bcc with 2/3 of the (111) planes collapsed (shifts ~0.5 A)",
    ("ZrO2", frozenset({"cubic", "tetragonal"})): "tetragonal = fluorite with O shifted ~0.3 A along c",
    ("ZrO2", frozenset({"tetragonal", "orthorhombic"})): "both are small distortions of the fluorite cell",
}


def make_matcher() -> StructureMatcher:
    """The matcher used to name products (see matching.identify)."""
    return StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True, attempt_supercell=True)


def _min_distance(structure: Structure, a: str | None = None, b: str | None = None) -> float:
    """Shortest distance between an atom of element a and one of element b, periodic images included
    (None = any element)."""
    centres, neighbours, _, distances = structure.get_neighbor_list(r=4.0)
    els = np.array([site.specie.symbol for site in structure])
    keep = np.ones(len(distances), dtype=bool)
    if a is not None:
        keep &= els[centres] == a
    if b is not None:
        keep &= els[neighbours] == b
    return float(distances[keep].min())


def _coordination(structure: Structure, centre: str, ligand: str, cutoff: float) -> list[int]:
    """Number of ligand atoms within cutoff of every centre atom."""
    return [
        sum(1 for n in structure.get_neighbors(site, cutoff) if n.specie.symbol == ligand)
        for site in structure
        if site.specie.symbol == centre
    ]


# ---------------------------------------------------------------------------------------------- the data


def test_every_data_file_has_entries() -> None:
    assert FORMULAS == known_formulas()
    compounds = {f for f in FORMULAS if len(Composition(f)) > 1}
    assert compounds == set(COORDINATION), "add new compounds to COORDINATION (bond and coordination checks)"
    assert len(ENTRIES) >= 30


def test_starter_set_is_complete() -> None:
    for formula, names in REQUIRED.items():
        present = {p.name for p in known_polymorphs(formula)}
        assert names <= present, f"{formula}: missing {sorted(names - present)}"


@pytest.mark.parametrize("formula", FORMULAS)
def test_one_ground_state_and_unique_names(formula: str) -> None:
    polymorphs = known_polymorphs(formula)
    names = [p.name for p in polymorphs]
    assert len(names) == len(set(names))
    assert sum(p.ground_state for p in polymorphs) == 1
    if formula in GROUND_STATES:
        assert ground_state(formula).name == GROUND_STATES[formula]


@pytest.mark.parametrize(("formula", "name"), ENTRIES, ids=[f"{f}-{n}" for f, n in ENTRIES])
class TestEntry:
    def test_metadata(self, formula: str, name: str) -> None:
        p = _entry(formula, name)
        assert p.formula == formula
        assert p.name == p.name.lower()
        assert p.source.strip()
        assert p.structure.is_ordered
        if p.approximant:
            assert len(p.note) > 50, "an approximant must explain its recipe in the note"

    def test_spacegroup_recovered_by_spglib(self, formula: str, name: str) -> None:
        p = _entry(formula, name)
        sga = SpacegroupAnalyzer(p.structure, symprec=0.01)
        assert sga.get_space_group_number() == p.spacegroup_number
        assert sga.get_space_group_symbol() == p.spacegroup_symbol

    def test_composition_reduces_to_formula(self, formula: str, name: str) -> None:
        p = _entry(formula, name)
        assert p.structure.composition.reduced_formula == formula
        assert reduced_formula(formula) == formula

    def test_distances_are_physical(self, formula: str, name: str) -> None:
        s = _entry(formula, name).structure
        assert _min_distance(s) > 1.0, "two atoms closer than 1 A"
        elements = sorted({site.specie.symbol for site in s})
        if len(elements) == 1:
            el = Element(elements[0])
            nearest = _min_distance(s, el.symbol, el.symbol)
            if el.is_metal:
                # metals: within 10 % of twice the (12-coordinate) metallic radius
                ideal = 2 * float(el.metallic_radius)
                assert abs(nearest / ideal - 1) < 0.10, f"{nearest:.3f} A vs 2 r_metallic = {ideal:.3f} A"
            else:
                ideal = 2 * COVALENT_RADIUS[el.symbol]
                assert 0.8 < nearest / ideal < 1.25, f"{nearest:.3f} A vs 2 r_covalent = {ideal:.3f} A"
        else:
            # compounds: shortest cation-anion bond within 0.8-1.25 x the sum of covalent radii. Wide enough
            # for ionic/covalent bonding at any coordination, narrow enough to catch origin-choice and typo
            # errors, which move atoms by far more (anatase in the wrong origin: Ti-O 0.40 A).
            cation, anion = COORDINATION[formula][:2]
            bond = _min_distance(s, cation, anion)
            ideal = COVALENT_RADIUS[cation] + COVALENT_RADIUS[anion]
            assert 0.8 < bond / ideal < 1.25, f"{cation}-{anion} {bond:.3f} A vs {ideal:.3f} A"

    def test_density_is_sane(self, formula: str, name: str) -> None:
        assert 1.5 < _entry(formula, name).structure.density < 25


COMPOUND_ENTRIES = [(f, n) for f, n in ENTRIES if f in COORDINATION]


@pytest.mark.parametrize(("formula", "name"), COMPOUND_ENTRIES, ids=[f"{f}-{n}" for f, n in COMPOUND_ENTRIES])
def test_cation_coordination(formula: str, name: str) -> None:
    cation, anion, cutoff, allowed = COORDINATION[formula]
    cns = set(_coordination(_entry(formula, name).structure, cation, anion, cutoff))
    assert cns <= allowed, f"{cation} coordination {sorted(cns)}, expected within {sorted(allowed)}"


@pytest.mark.parametrize("formula", FORMULAS)
def test_no_two_entries_match(formula: str) -> None:
    """Entries must be distinguishable by the product-naming matcher (or, for known close pairs, by space group)."""
    matcher = make_matcher()
    matched = set()
    for a, b in itertools.combinations(known_polymorphs(formula), 2):
        if matcher.fit(a.structure, b.structure):
            pair = (formula, frozenset({a.name, b.name}))
            assert pair in KNOWN_CLOSE_PAIRS, f"{a.name} and {b.name} match each other"
            assert a.spacegroup_number != b.spacegroup_number
            matched.add(pair)
    stale = {pair for pair in KNOWN_CLOSE_PAIRS if pair[0] == formula} - matched
    assert not stale, f"no longer matching, remove from KNOWN_CLOSE_PAIRS: {stale}"


# ----------------------------------------------------------------------------------------- spot checks


def test_rutile_bond_length() -> None:
    bond = _min_distance(_entry("TiO2", "rutile").structure, "Ti", "O")
    assert 1.94 <= bond <= 1.99


def test_anatase_origin_choice() -> None:
    s = _entry("TiO2", "anatase").structure
    assert 1.93 <= _min_distance(s, "Ti", "O") <= 1.98
    assert len(SpacegroupAnalyzer(s, symprec=0.01).find_primitive()) == 6


def test_brookite_cell() -> None:
    s = _entry("TiO2", "brookite").structure
    assert s.lattice.b == pytest.approx(5.449)
    assert _min_distance(s, "Ti", "O") > 1.8


@pytest.mark.parametrize("name", sorted(REQUIRED["SiO2"]))
def test_every_silicon_in_silica_is_tetrahedral(name: str) -> None:
    assert set(_coordination(_entry("SiO2", name).structure, "Si", "O", 1.8)) == {4}


def test_kappa_and_gamma_alumina_mix_tetrahedral_and_octahedral_al() -> None:
    for name, tetrahedral_fraction in (("kappa", 0.25), ("gamma", 6 / 16)):
        cns = _coordination(_entry("Al2O3", name).structure, "Al", "O", 2.3)
        assert cns.count(4) / len(cns) == pytest.approx(tetrahedral_fraction)


def test_approximants_are_flagged() -> None:
    flagged = {(p.formula, p.name) for f in FORMULAS for p in known_polymorphs(f) if p.approximant}
    assert flagged == {("Al2O3", "gamma")}


# ------------------------------------------------------------------------------------------------- API


def test_formula_normalisation() -> None:
    assert reduced_formula("O2Ti") == "TiO2"
    assert known_polymorphs("O2Ti") == known_polymorphs("TiO2")
    assert known_polymorphs("Ti4O8") == known_polymorphs("TiO2")
    assert known_polymorphs("CSi") == known_polymorphs("SiC")
    assert ground_state("O3Al2").name == "corundum"


def test_unknown_formula_gives_nothing() -> None:
    assert known_polymorphs("NaCl") == []
    assert ground_state("NaCl") is None
    assert "NaCl" not in known_formulas()


def test_not_a_formula_is_an_error() -> None:
    for bad in ("", "Xx2O", "not a formula"):
        with pytest.raises(ValueError):
            known_polymorphs(bad)


def test_results_are_cached_but_the_list_is_a_copy() -> None:
    first, second = known_polymorphs("TiO2"), known_polymorphs("TiO2")
    assert first is not second
    assert all(a is b for a, b in zip(first, second))
    assert len(set(first)) == len(first)  # hashable, usable as dict keys


# --------------------------------------------------------------------------------- loader validation


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    """Point the loader at a scratch folder (and keep the real cache clean)."""
    monkeypatch.setattr(database, "_data_dir", lambda: tmp_path)
    database._load.cache_clear()
    yield tmp_path
    database._load.cache_clear()


ANATASE = """
formula = "TiO2"

[[polymorph]]
name = "anatase"
spacegroup = "I4_1/amd"
spacegroup_number = 141
setting = "{setting}"
lattice = {{ a = 3.785, c = 9.514 }}
sites = [
  {{ element = "Ti", wyckoff = "4a", xyz = [0.0, 0.75, 0.125] }},
  {{ element = "{anion}",  wyckoff = "8e", xyz = [0.0, 0.25, 0.08306] }},
]
source = "test"
ground_state = {ground}
"""


def test_loader_reads_a_valid_file(data_dir: Path) -> None:
    (data_dir / "TiO2.toml").write_text(ANATASE.format(setting="I41/amd:2", anion="O", ground="true"))
    [anatase] = known_polymorphs("TiO2")
    assert len(anatase.structure) == 12
    assert known_formulas() == ["TiO2"]


def test_loader_catches_wrong_origin_choice(data_dir: Path) -> None:
    (data_dir / "TiO2.toml").write_text(ANATASE.format(setting="I4_1/amd", anion="O", ground="true"))
    with pytest.raises(ValueError, match=r"TiO2\.toml.*anatase.*multiplicity"):
        known_polymorphs("TiO2")


def test_loader_catches_wrong_composition(data_dir: Path) -> None:
    (data_dir / "TiO2.toml").write_text(ANATASE.format(setting="I41/amd:2", anion="N", ground="true"))
    with pytest.raises(ValueError, match=r"TiO2\.toml.*anatase.*TiN2"):
        known_polymorphs("TiO2")


def test_loader_requires_exactly_one_ground_state(data_dir: Path) -> None:
    (data_dir / "TiO2.toml").write_text(ANATASE.format(setting="I41/amd:2", anion="O", ground="false"))
    with pytest.raises(ValueError, match="ground_state"):
        known_polymorphs("TiO2")
