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
from ase.data import atomic_numbers, covalent_radii
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from amorph.matching import database, matcher
from amorph.matching.database import Polymorph, ground_state, known_formulas, known_polymorphs, reduced_formula

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


# Formulas the database must cover (issue 3), and entries that must be present in some of them.
REQUIRED_FORMULAS = """
TiO2 ZrO2 HfO2 SiO2 GeO2 Al2O3 Ga2O3 Fe2O3 ZnO SnO2 In2O3 Y2O3 Bi2O3 MoO3 WO3 Nb2O5 Ta2O5 V2O5 MgO
CaCO3 BaTiO3 Si3N4 GaN AlN BN TiN SiC WC TiC AlF3 MgF2 CaF2 NaCl AgCl CuCl ZnS CdS CdSe GeTe Sb2Te3
MoS2 Si Ge C Fe Ti Co Zr Cu Ni Al NiTi CuZr
""".split()
REQUIRED = {
    "Cu": {"fcc", "hcp", "bcc"},
    "Fe": {"bcc", "fcc", "hcp"},
    "Ti": {"hcp", "bcc", "omega"},
    "Si": {"diamond", "beta-tin", "hexagonal-diamond"},
    "SiC": {"3c", "4h", "6h"},
    "TiO2": {"rutile", "anatase", "brookite", "columbite", "tio2-b", "baddeleyite-type", "cotunnite-type"},
    "ZrO2": {"monoclinic", "tetragonal", "cubic", "orthorhombic"},
    "HfO2": {"monoclinic", "tetragonal", "cubic", "orthorhombic"},
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
    "HfO2": "monoclinic",
    "SiO2": "alpha-quartz",
    "Al2O3": "corundum",
    "ZnO": "wurtzite",
}
# Disordered phases that must be present as documented ordered approximants: (formula, name).
REQUIRED_APPROXIMANTS = {("Al2O3", "gamma")}

# Single-bond covalent radii (A) of Cordero et al. 2008, Dalton Trans. 2832, as ASE ships them.
COVALENT_RADIUS = {el: float(covalent_radii[atomic_numbers[el]]) for el in atomic_numbers if el != "X"}
# Every atom's nearest neighbour sits within these bounds of the sum of the two covalent radii. Wide enough
# for bonds of any coordination (ionic, covalent, metallic, van der Waals-layered), narrow enough to catch
# origin-choice and typo errors, which move atoms by far more (anatase in the wrong origin: Ti-O 0.40 A).
# The floor is set by metal-oxygen double bonds, shorter than any single bond (vanadyl V=O in V2O5: 1.58 A,
# 0.72 x the single-bond sum).
NEAREST_NEIGHBOUR_RATIO = (0.70, 1.32)

# Spot checks of cation coordination: (cation, anion, bond cutoff in A, allowed coordination numbers). The
# cutoffs sit in the gap between the first and second coordination shells of every entry of the formula.
COORDINATION = {
    "SiO2": ("Si", "O", 1.8, {4}),
    "SiC": ("Si", "C", 2.1, {4}),
    "TiO2": ("Ti", "O", 2.3, {6, 7, 9}),
    "Al2O3": ("Al", "O", 2.3, {4, 6}),
    "ZrO2": ("Zr", "O", 2.6, {7, 8}),
    "ZnO": ("Zn", "O", 2.4, {4, 6}),
}


def make_matcher() -> StructureMatcher:
    """The matcher used to name products."""
    return matcher.make_matcher()


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
    assert len(FORMULAS) >= 60
    missing = sorted(f for f in REQUIRED_FORMULAS if reduced_formula(f) not in FORMULAS)  # NiTi is stored as TiNi
    assert not missing, f"missing {missing}"


def test_required_polymorphs_are_present() -> None:
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
        centres, neighbours, _, distances = s.get_neighbor_list(r=5.0)
        symbols = [site.specie.symbol for site in s]
        low, high = NEAREST_NEIGHBOUR_RATIO
        for i, symbol in enumerate(symbols):
            mine = centres == i
            assert mine.any(), f"atom {i} ({symbol}) has no neighbour within 5 A"
            k = int(np.argmin(np.where(mine, distances, np.inf)))
            other = symbols[neighbours[k]]
            ratio = distances[k] / (COVALENT_RADIUS[symbol] + COVALENT_RADIUS[other])
            assert low < ratio < high, f"atom {i} {symbol}-{other} {distances[k]:.3f} A is {ratio:.2f} x the covalent sum"

    def test_density_is_sane(self, formula: str, name: str) -> None:
        assert 1.5 < _entry(formula, name).structure.density < 25


COORDINATION_ENTRIES = [(f, n) for f, n in ENTRIES if f in COORDINATION]


@pytest.mark.parametrize(("formula", "name"), COORDINATION_ENTRIES, ids=[f"{f}-{n}" for f, n in COORDINATION_ENTRIES])
def test_cation_coordination(formula: str, name: str) -> None:
    cation, anion, cutoff, allowed = COORDINATION[formula]
    cns = set(_coordination(_entry(formula, name).structure, cation, anion, cutoff))
    assert cns <= allowed, f"{cation} coordination {sorted(cns)}, expected within {sorted(allowed)}"


@pytest.mark.parametrize("formula", FORMULAS)
def test_no_two_entries_match(formula: str) -> None:
    """Entries must be told apart by the product-naming matcher, or, for pairs declared `close_to` in the data
    (small displacive distortions of each other), by their space groups, which identification tries first."""
    matcher = make_matcher()
    polymorphs = known_polymorphs(formula)
    declared = {frozenset({p.name, other}) for p in polymorphs for other in p.close_to}
    for p in polymorphs:
        for other in p.close_to:
            assert p.name in next(q for q in polymorphs if q.name == other).close_to, f"{p.name}/{other} not symmetric"
    matched = set()
    for a, b in itertools.combinations(polymorphs, 2):
        if matcher.fit(a.structure, b.structure):
            pair = frozenset({a.name, b.name})
            assert pair in declared, f"{a.name} and {b.name} match each other"
            assert a.spacegroup_number != b.spacegroup_number
            matched.add(pair)
    assert not declared - matched, f"declared close_to but no longer matching: {declared - matched}"


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
    assert REQUIRED_APPROXIMANTS <= flagged


# ------------------------------------------------------------------------------------------------- API


def test_formula_normalisation() -> None:
    assert reduced_formula("O2Ti") == "TiO2"
    assert known_polymorphs("O2Ti") == known_polymorphs("TiO2")
    assert known_polymorphs("Ti4O8") == known_polymorphs("TiO2")
    assert known_polymorphs("CSi") == known_polymorphs("SiC")
    assert ground_state("O3Al2").name == "corundum"


def test_unknown_formula_gives_nothing() -> None:
    assert known_polymorphs("Li3PO4") == []
    assert ground_state("Li3PO4") is None
    assert "Li3PO4" not in known_formulas()


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
    from amorph.matching import database_index

    monkeypatch.setattr(database, "_data_dir", lambda: tmp_path)
    monkeypatch.setattr(database_index, "data_dir", lambda: tmp_path)  # the listing reads the same folder
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


# ------------------------------------------------------------------------- transition-metal disilicides

# The four structure types of the disilicide literature, by the Strukturbericht tag every entry's name starts
# with (the accuracy benchmark scores TiSi2 and MoSi2 by that tag): space group and atoms per primitive cell.
DISILICIDE_TYPES = {"c11b": (139, 3), "c40": (180, 9), "c49": (63, 6), "c54": (70, 6)}
# formula -> (ground state's type, every type present)
DISILICIDES = {
    "TiSi2": ("c54", {"c54", "c49", "c40"}),
    "ZrSi2": ("c49", {"c49"}),
    "VSi2": ("c40", {"c40"}),
    "NbSi2": ("c40", {"c40"}),
    "TaSi2": ("c40", {"c40"}),
    "CrSi2": ("c40", {"c40"}),
    "MoSi2": ("c11b", {"c11b", "c40"}),
    "WSi2": ("c11b", {"c11b", "c40"}),
}


@pytest.mark.parametrize("formula", sorted(DISILICIDES))
def test_disilicides_build_with_their_structure_types(formula: str) -> None:
    """Each entry is named by its type, has that type's space group (spglib) and primitive-cell size, and a
    shortest metal-Si distance of a disilicide (2.48 A in CrSi2 to ~2.7 A in ZrSi2); no two atoms closer than
    2.2 A. MoSi2 and WSi2 are stored under pymatgen's spelling (Si2Mo, Si2W)."""
    ground, types = DISILICIDES[formula]
    polymorphs = known_polymorphs(formula)
    by_type = {p.name.split()[0]: p for p in polymorphs}
    assert set(by_type) == types, [p.name for p in polymorphs]
    assert ground_state(formula) is by_type[ground]
    for kind, p in by_type.items():
        number, n_primitive = DISILICIDE_TYPES[kind]
        metal = next(el.symbol for el in p.structure.composition if el.symbol != "Si")
        sga = SpacegroupAnalyzer(p.structure, symprec=0.01)
        assert p.spacegroup_number == sga.get_space_group_number() == number, p.name
        assert len(sga.find_primitive()) == n_primitive, p.name
        assert 2.4 < _min_distance(p.structure, metal, "Si") < 2.8, p.name
        assert _min_distance(p.structure) > 2.2, p.name
        assert p.source.strip() and p.note.strip()


def test_c40_and_c49_tags_name_only_their_space_groups() -> None:
    """The benchmark rows of TiSi2 and MoSi2 need 'c49' and 'c40' in the name (beta-quartz also has 180, several
    AB2 types have 63): in the whole database only entries of those space groups carry the tags."""
    named = [p for f in FORMULAS for p in known_polymorphs(f)]
    assert {p.spacegroup_number for p in named if "c49" in p.name} == {63}
    assert {p.spacegroup_number for p in named if "c40" in p.name} == {180}
