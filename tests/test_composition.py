import numpy as np
import pytest

from amorph.composition import number_of_atoms, parse_formula, volume_per_atom_from_radii
from amorph.errors import AmorphError
from amorph.packing import minimum_contact_ratio, random_packing


@pytest.mark.parametrize(
    "text,reduced,n_unit", [("TiO2", "TiO2", 3), ("Ti2O4", "TiO2", 3), ("Al2O3", "Al2O3", 5), ("Cu", "Cu", 1), ("O2Ti", "TiO2", 3)]
)
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


def test_push_apart_parts_overlaps_in_many_cells_and_leaves_the_rest():
    from ase import Atoms

    from amorph.packing import push_apart

    d0 = 0.8 * 2 * 1.32  # Cu-Cu contact distance
    crowded = Atoms("Cu2", positions=[[1, 1, 1], [1.5, 1, 1]], cell=[6, 6, 6], pbc=True)
    # sheared cell, overlap across the periodic boundary only
    sheared = Atoms("Cu2", scaled_positions=[[0.02, 0.5, 0.5], [0.97, 0.5, 0.5]], cell=[[5, 0, 0], [2, 5, 0], [0, 0, 5]], pbc=True)
    fine = Atoms("Cu2", positions=[[1, 1, 1], [4, 1, 1]], cell=[6, 6, 6], pbc=True)
    collapsed = Atoms("Cu2", positions=[[0, 1, 1], [0, 1.2, 1]], cell=[0.01, 6, 6], pbc=True)  # far too thin to list
    before = [c.positions.copy() for c in (fine, collapsed)]
    moves = push_apart([crowded, sheared, fine, collapsed], 100)
    for cell in (crowded, sheared):
        assert cell.get_distance(0, 1, mic=True) >= 0.95 * d0 - 1e-9
    assert moves[0] == pytest.approx((d0 - 0.5) / 2, abs=1e-9)  # each atom takes half the way to contact
    assert moves[1] > 0
    assert moves[2:] == [0.0, 0.0]
    assert np.array_equal(fine.positions, before[0]) and np.array_equal(collapsed.positions, before[1])
