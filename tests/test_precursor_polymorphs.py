"""Polymorphs that crystallise first from amorphous and gel precursors (issue 32): beta-cristobalite (SiO2),
beta and delta Bi2O3, gamma and bixbyite-type ("delta") Ga2O3.

Each entry is built through the project's loader and checked for its exact formula, its space group as spglib
finds it (for the ordered approximants: the symmetry of the ordered model, stated in its note), its cell size
and its shortest cation-oxygen distance in a narrow window, so that a mistyped coordinate, cell edge or origin
choice fails here.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pytest
from pymatgen.core import Composition, Structure
from pymatgen.symmetry.analyzer import SpacegroupAnalyzer

from amorph.matching.database import Polymorph, known_polymorphs


class Expected(NamedTuple):
    formula: str
    name: str
    spacegroup_number: int
    spacegroup_symbol: str
    primitive_atoms: int
    approximant: bool
    cation: str
    shortest_cation_o: float  # A, as the entry's data give it (checked to +-0.01 A)


EXPECTED = [
    # ideal C9, origin choice 2: Si 8a, O 16c; Si-O = a*sqrt(3)/8
    Expected("SiO2", "beta-cristobalite", 227, "Fd-3m", 6, False, "Si", 1.551),
    # Blower & Greaves 1988
    Expected("Bi2O3", "beta", 114, "P-42_1c", 20, False, "Bi", 2.096),
    # ordered <111>-vacancy fluorite model: Bi-O = a*sqrt(3)/4
    Expected("Bi2O3", "delta", 224, "Pn-3m", 10, True, "Bi", 2.451),
    # ordered defect-spinel model, vacancies on 2 of 6 tetrahedral sites: tetrahedral Ga-O = sqrt(3)*(x - 1/8)*a
    Expected("Ga2O3", "gamma", 164, "P-3m1", 40, True, "Ga", 1.855),
    # In2O3 coordinates in the 1952 cell
    Expected("Ga2O3", "bixbyite-type", 206, "Ia-3", 40, False, "Ga", 2.099),
]
IDS = [f"{e.formula}-{e.name}" for e in EXPECTED]

# Typical cation-oxygen bond lengths (A); every cation's nearest O must lie within 10 % of this range.
TYPICAL_BOND = {"Si": (1.55, 1.65), "Ga": (1.85, 2.10), "Bi": (2.10, 2.60)}


def _entry(formula: str, name: str) -> Polymorph:
    matches = [p for p in known_polymorphs(formula) if p.name == name]
    assert len(matches) == 1, f"{formula}: no entry named {name!r}"
    return matches[0]


def _nearest(structure: Structure, centre: str, ligand: str) -> list[float]:
    """For every atom of element centre, the distance to its nearest ligand atom (periodic images included)."""
    centres, neighbours, _, distances = structure.get_neighbor_list(r=4.0)
    symbols = np.array([site.specie.symbol for site in structure])
    out = []
    for i in np.flatnonzero(symbols == centre):
        mine = (centres == i) & (symbols[neighbours] == ligand)
        out.append(float(distances[mine].min()))
    return out


def _coordination(structure: Structure, centre: str, ligand: str, cutoff: float) -> list[int]:
    return [sum(1 for n in structure.get_neighbors(site, cutoff) if n.specie.symbol == ligand) for site in structure if site.specie.symbol == centre]


@pytest.mark.parametrize("e", EXPECTED, ids=IDS)
def test_formula_is_exact(e: Expected) -> None:
    structure = _entry(e.formula, e.name).structure
    assert structure.is_ordered
    assert structure.composition.reduced_composition == Composition(e.formula)
    assert structure.composition.reduced_formula == e.formula


@pytest.mark.parametrize("e", EXPECTED, ids=IDS)
def test_spacegroup_and_cell_size(e: Expected) -> None:
    p = _entry(e.formula, e.name)
    sga = SpacegroupAnalyzer(p.structure, symprec=0.01)
    assert sga.get_space_group_number() == e.spacegroup_number == p.spacegroup_number
    assert sga.get_space_group_symbol() == e.spacegroup_symbol == p.spacegroup_symbol
    assert len(sga.find_primitive()) == e.primitive_atoms


@pytest.mark.parametrize("e", EXPECTED, ids=IDS)
def test_shortest_cation_oxygen_distance(e: Expected) -> None:
    structure = _entry(e.formula, e.name).structure
    nearest = _nearest(structure, e.cation, "O")
    assert min(nearest) == pytest.approx(e.shortest_cation_o, abs=0.01)
    low, high = TYPICAL_BOND[e.cation]
    assert 0.9 * low <= min(nearest) and max(nearest) <= 1.1 * high, f"{e.cation}-O {min(nearest):.3f}-{max(nearest):.3f} A"
    centres, _, _, distances = structure.get_neighbor_list(r=1.5)
    assert len(distances) == 0 or distances.min() > 1.0, "two atoms closer than 1 A"


@pytest.mark.parametrize("e", EXPECTED, ids=IDS)
def test_approximants_are_flagged_and_explained(e: Expected) -> None:
    p = _entry(e.formula, e.name)
    assert p.approximant == e.approximant
    if e.approximant:
        assert "ordered model of that disordered phase" in p.note
        assert f"{e.primitive_atoms} atoms" in p.note


# ------------------------------------------------------------------------------------------ spot checks


def test_beta_cristobalite_is_tetrahedral_and_declared_close_to_alpha() -> None:
    beta, alpha = _entry("SiO2", "beta-cristobalite"), _entry("SiO2", "alpha-cristobalite")
    assert set(_coordination(beta.structure, "Si", "O", 1.8)) == {4}
    assert beta.structure.lattice.a == pytest.approx(7.166)  # conventional cubic cell, origin choice 2
    # alpha is a displacive distortion of beta: the matcher cannot separate them, the space group does
    assert beta.close_to == ("alpha-cristobalite",) and alpha.close_to == ("beta-cristobalite",)
    assert beta.spacegroup_number != alpha.spacegroup_number


def test_tridymite_is_the_beta_form_and_not_duplicated() -> None:
    names = {p.name for p in known_polymorphs("SiO2")}
    assert "tridymite" in names and "beta-tridymite" not in names
    tridymite = _entry("SiO2", "tridymite")
    assert tridymite.spacegroup_symbol == "P6_3/mmc"
    assert "beta (high) tridymite" in tridymite.note


def test_beta_bi2o3_keeps_four_short_bonds() -> None:
    cns = _coordination(_entry("Bi2O3", "beta").structure, "Bi", "O", 2.5)
    assert set(cns) == {4}


def test_delta_bi2o3_model_is_fluorite_with_ordered_vacancies() -> None:
    s = _entry("Bi2O3", "delta").structure
    assert s.lattice.abc == pytest.approx((5.6595,) * 3)
    assert set(_coordination(s, "Bi", "O", 2.6)) == {6}  # fluorite Bi has 8; two <111> neighbours are vacant
    assert set(_coordination(s, "O", "Bi", 2.6)) == {4}


def test_gamma_ga2o3_has_a_quarter_of_ga_tetrahedral() -> None:
    cns = _coordination(_entry("Ga2O3", "gamma").structure, "Ga", "O", 2.3)
    assert sorted(set(cns)) == [4, 6]
    assert cns.count(4) / len(cns) == pytest.approx(4 / 16)


def test_bixbyite_type_ga2o3_says_delta_is_not_a_phase() -> None:
    p = _entry("Ga2O3", "bixbyite-type")
    assert "delta" in p.note and "epsilon/kappa" in p.note
    assert set(_coordination(p.structure, "Ga", "O", 2.3)) == {6}
