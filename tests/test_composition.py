import numpy as np
import pytest

from amorph.composition import number_of_atoms, parse_formula, volume_per_atom_from_radii
from amorph.errors import AmorphError
from amorph.packing import minimum_contact_ratio, random_packing


@pytest.mark.parametrize("text,reduced,n_unit", [("TiO2", "TiO2", 3), ("Ti2O4", "TiO2", 3), ("Al2O3", "Al2O3", 5), ("Cu", "Cu", 1), ("O2Ti", "TiO2", 3)])
def test_parse_formula(text, reduced, n_unit):
    f = parse_formula(text)
    assert f.reduced == reduced
    assert f.atoms_per_formula_unit == n_unit


@pytest.mark.parametrize("bad", ["", "123", "Xx2", "TiO2.5", "hello", "Ti-O"])
def test_bad_formula_is_refused(bad):
    with pytest.raises(AmorphError):
        parse_formula(bad)


def test_number_of_atoms_is_closest_whole_multiple():
    assert number_of_atoms(parse_formula("TiO2"), 100) == 99
    assert number_of_atoms(parse_formula("Al2O3"), 100) == 100
    assert number_of_atoms(parse_formula("Al2O3"), 2) == 5  # never less than one formula unit
    assert number_of_atoms(parse_formula("Cu"), 32) == 32


def test_radii_volume_estimate_is_near_rutile():
    assert volume_per_atom_from_radii(parse_formula("TiO2")) == pytest.approx(10.4, rel=0.15)


def test_random_packing_has_no_overlaps_and_right_composition():
    f = parse_formula("TiO2")
    atoms = random_packing(f, 48, 1.15 * 48 * 10.4, np.random.default_rng(3))
    assert atoms.get_chemical_formula() == "O32Ti16"
    assert atoms.get_volume() == pytest.approx(1.15 * 48 * 10.4)
    assert np.allclose(atoms.cell.angles(), 90)
    assert minimum_contact_ratio(atoms) >= 0.95 - 1e-9


def test_random_packing_is_seeded():
    f = parse_formula("Cu")
    a = random_packing(f, 16, 16 * 13.0, np.random.default_rng(7))
    b = random_packing(f, 16, 16 * 13.0, np.random.default_rng(7))
    c = random_packing(f, 16, 16 * 13.0, np.random.default_rng(8))
    assert np.allclose(a.positions, b.positions)
    assert not np.allclose(a.positions, c.positions)
