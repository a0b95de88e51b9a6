"""Symmetry ladder, identification against the database, and ranking."""

import numpy as np
import pytest
from pymatgen.core import Lattice, Structure

from amorph.matching.database import known_polymorphs
from amorph.matching.identify import Clusters, Identity, Product, identify
from amorph.matching.matcher import make_matcher, reduced_for_matching
from amorph.matching.ranking import Outcome, most_frequent_known, tally
from amorph.matching.symmetry import find_symmetry, primitive_size


def _by_name(formula):
    return {p.name: p for p in known_polymorphs(formula)}


def _rattled(structure: Structure, sigma: float, seed: int) -> Structure:
    s = structure.copy()
    rng = np.random.default_rng(seed)
    for i in range(len(s)):
        s.translate_sites([i], rng.normal(0, sigma, 3), frac_coords=False)
    return s


def test_ladder_finds_symmetry_of_a_rattled_crystal():
    rutile = _by_name("TiO2")["rutile"].structure
    assert find_symmetry(rutile).number == 136
    sym = find_symmetry(_rattled(rutile, 0.01, 0))
    assert sym.number == 136 and sym.symprec > 0.01  # tight tolerance alone would not see it


def test_primitive_sizes():
    tio2 = _by_name("TiO2")
    assert primitive_size(tio2["rutile"].structure) == 6
    assert primitive_size(tio2["anatase"].structure) == 6
    assert primitive_size(_by_name("Cu")["fcc"].structure) == 1


def _product(i, structure, energy):
    return Product(i, structure, energy, find_symmetry(structure))


def test_identify_names_known_polymorphs_supercells_and_unknowns():
    tio2 = _by_name("TiO2")
    rutile, anatase = tio2["rutile"].structure, tio2["anatase"].structure
    supercell = rutile * (1, 1, 2)
    strained = anatase.copy()
    strained.apply_strain([0.02, -0.01, 0.02])
    odd = Structure(Lattice.cubic(4.0), ["Ti", "O", "O"], [[0, 0, 0], [0.5, 0, 0], [0, 0.5, 0.5]])
    products = [
        _product(0, rutile, -9.0),
        _product(1, supercell, -8.9),
        _product(2, strained, -8.95),
        _product(3, odd, -7.0),
        _product(4, odd.copy(), -7.1),
    ]
    labels = identify(products, known_polymorphs("TiO2"))
    assert labels[0].label == labels[1].label == "rutile" and labels[0].known
    assert labels[2].label == "anatase" and labels[2].spacegroup_number == 141
    assert labels[3].label == labels[4].label == "unknown-1" and not labels[3].known

    # added in two rounds (as --max-subcells auto does), the products get the same names
    rounds = Clusters(known_polymorphs("TiO2"))
    rounds.add(products[:2] + products[3:4])
    assert rounds.known_names() == {0: "rutile", 1: "rutile", 3: ""}
    rounds.add(products[2:3] + products[4:])
    assert rounds.identities() == labels


def test_reduced_once_fits_as_plain_fit():
    """Clusters reduces each structure once and calls fit(..., skip_structure_reduction=True): same answers
    as plain fit, for every polymorph against rattled, strained, supercell and oblique cells and random cells."""
    assert known_polymorphs("TiO2")[1].name == "anatase"
    polymorphs = [p.structure for p in known_polymorphs("TiO2")]
    rng = np.random.default_rng(3)
    products = []
    for k, s in enumerate(polymorphs):
        s = _rattled(s * (2, 1, 1) if k % 2 else s, 0.04, k)
        s.apply_strain(rng.uniform(-0.03, 0.03, 3))
        products.append(s)
    sheared = polymorphs[1].copy()
    sheared.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 1]])
    products.append(sheared)
    # 18 sites against anatase's 12-site conventional cell: fits only once both are reduced to 6
    products.append(_rattled(polymorphs[1].get_primitive_structure() * (3, 1, 1), 0.03, 9))
    for n in (2, 4):  # random cells of 6 and 12 sites
        lattice = Lattice.orthorhombic(*rng.uniform(3.5, 6.5, 3))
        products.append(Structure(lattice, ["Ti"] * n + ["O"] * 2 * n, rng.random((3 * n, 3))))
    matcher = make_matcher()
    plain = [[matcher.fit(a, b) for b in products] for a in polymorphs]
    reduced = [reduced_for_matching(matcher, s) for s in products]
    skipped = [
        [matcher.fit(reduced_for_matching(matcher, a), b, skip_structure_reduction=True) for b in reduced] for a in polymorphs
    ]
    assert skipped == plain
    assert sum(map(sum, plain)) >= len(polymorphs) + 2  # each rattled polymorph, the oblique and 18-site cells match
    assert not all(map(all, plain))


def test_tally_and_prediction():
    rut = Identity("rutile", True, "P4_2/mnm", 136)
    ana = Identity("anatase", True, "I4_1/amd", 141)
    unk = Identity("unknown-1", False, "P1", 1)
    outcomes = [Outcome(0, ana, -9.0, "TiO2"), Outcome(1, ana, -8.8, "TiO2"), Outcome(2, rut, -9.1, "TiO2")]
    outcomes += [Outcome(3 + k, unk, -8.0 - 0.1 * k, "TiO2") for k in range(3)]
    rows = tally(outcomes)
    assert [r.name for r in rows] == ["unknown-1", "anatase", "rutile"]
    ana_row = rows[1]
    assert ana_row.count == 2 and ana_row.share == pytest.approx(2 / 6)
    assert ana_row.lowest_energy_per_atom == -9.0 and ana_row.median_energy_per_atom == pytest.approx(-8.9)
    assert most_frequent_known(rows).name == "anatase"  # most frequent *known* polymorph
    assert most_frequent_known(tally([Outcome(0, unk, -1.0, "TiO2")])) is None
