import numpy as np
import pytest

from amorph.composition import number_of_atoms, parse_formula, volume_per_atom_from_radii
from amorph.errors import AmorphError
from amorph.packing import minimum_contact_ratio, random_packing


@pytest.mark.parametrize(
    "text,reduced,n_unit",
    [
        ("TiO2", "TiO2", 3),
        ("Ti2O4", "TiO2", 3),
        ("Al2O3", "Al2O3", 5),
        ("Cu", "Cu", 1),
        ("O2Ti", "TiO2", 3),
        ("TiO₂", "TiO2", 3),  # subscripts, as pasted from a paper
        ("Ca(OH)2", "Ca(HO)2", 5),
        ("CuSO4·5H2O", "CuH10SO9", 21),  # a hydrate: the parts summed
        ("CuSO4*5H2O", "CuH10SO9", 21),
        ("Al2(SO4)3·18H2O", "Al2H36(SO10)3", 5 + 12 + 54),
        ("Na2CO3·1.5H2O", "Na4H6C2O9", 4 + 6 + 2 + 9),  # a sesquihydrate: twice over, in whole atoms
    ],
)
def test_parse_formula(text, reduced, n_unit):
    f = parse_formula(text)
    assert f.reduced == reduced
    assert f.atoms_per_formula_unit == n_unit


@pytest.mark.parametrize(
    "bad,needle",
    [
        ("", "not a chemical formula"),
        ("123", "not a chemical formula"),
        ("Xx2", "not a chemical formula"),
        ("tio2", "not a chemical formula"),
        ("TiO2.5", "fractional"),
        ("CuSO4.5H2O", "a hydrate is written with '·'"),
        ("hello", "not a chemical formula"),
        ("Ti-O", "not a chemical formula"),
        ("Ti-1O2", "not a chemical formula"),
        ("TiO2+", "not a chemical formula"),
        ("Fe2+O3", "not a chemical formula"),
        ("Cu1e3", "not powers of ten"),
        ("2TiO2", "not a chemical formula"),
        ("TiO2·", "not a chemical formula"),
        ("Cu·0H2O", "adds zero of H2O"),
        ("TiO2·0.0H2O", "adds zero of H2O"),
        ("Ca(OH)0", "gives a group an amount of zero"),
        ("Cu·6000H2O", "more than 5000 atoms"),
        ("Ti0O2", "amount of zero"),
        ("Cu10000", "more than 5000 atoms of Cu"),
        ("Ti" * 3000 + "Q", "not a chemical formula"),
        ("TiO\u2082\u200b", "not a chemical formula"),  # a zero-width space after the subscript
    ],
)
def test_bad_formula_is_refused(bad, needle):
    with pytest.raises(AmorphError, match=None) as err:
        parse_formula(bad)
    assert needle in str(err.value) and "\n" not in str(err.value) and len(str(err.value)) < 200


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


def test_messages_show_the_formula_as_written_when_it_is_the_reduced_one():
    from amorph.composition import parse_formula

    assert parse_formula("MoSi2").reduced == "Si2Mo" and parse_formula("MoSi2").display == "MoSi2"
    assert parse_formula("Ti2O4").display == "TiO2"  # not reduced as written: the run is for TiO2, and says so
    assert parse_formula("TiO₂").display == "TiO2"
