from collections import Counter

import numpy as np
import pytest

from amorph.composition import parse_formula
from amorph.motifs.subcells import allowed_counts, extract_subcells, grid_intervals
from amorph.packing import minimum_contact_ratio, random_packing


@pytest.fixture(scope="module")
def amorphous_tio2():
    return random_packing(parse_formula("TiO2"), 48, 1.15 * 48 * 10.4, np.random.default_rng(0))


def test_grid_intervals():
    assert len(grid_intervals(0.25)) == 10  # 5 points, C(5, 2)
    assert len(grid_intervals(0.1)) == 55
    assert grid_intervals(0.3)[-1] == (0.9, 1.0)  # the grid always reaches 1


def test_allowed_counts_follow_formula_and_primitive_sizes():
    tio2 = parse_formula("TiO2")
    assert allowed_counts(tio2, 2, 24, None) == {3, 6, 9, 12, 15, 18, 21, 24}
    assert allowed_counts(tio2, 2, 24, [6, 24]) == {6, 12, 18, 24}
    assert allowed_counts(tio2, 2, 24, [6, 12]) == {6, 12, 18, 24}


def test_subcells_are_stoichiometric_distinct_and_periodic_copies(amorphous_tio2):
    subs, census = extract_subcells(
        amorphous_tio2, parse_formula("TiO2"), 0.1, 2, 12, 10_000, np.random.default_rng(0), sizes=[6], push_cut_contacts=False
    )
    assert census.selected == len(subs) == census.distinct > 0
    assert {s.n_atoms for s in subs} <= {6, 12}
    assert len({s.indices for s in subs}) == len(subs)
    frac = amorphous_tio2.get_scaled_positions()
    for s in subs[:50]:
        counts = Counter(s.atoms.get_chemical_symbols())
        assert counts["O"] == 2 * counts["Ti"]
        lower, upper = np.array(s.lower), np.array(s.upper)
        assert np.all((frac[list(s.indices)] >= lower) & (frac[list(s.indices)] < upper))
        # the box is the slice of the parent cell; fractional coordinates are rescaled into it
        assert np.allclose(s.atoms.cell.lengths(), amorphous_tio2.cell.lengths() * (upper - lower))
        assert np.allclose(s.atoms.get_scaled_positions(wrap=False), (frac[list(s.indices)] - lower) / (upper - lower))
        assert list(s.atoms.numbers) == list(amorphous_tio2.numbers[list(s.indices)])


def test_budget_sampling_is_seeded(amorphous_tio2):
    f = parse_formula("TiO2")
    a, _ = extract_subcells(amorphous_tio2, f, 0.1, 2, 12, 20, np.random.default_rng(5))
    b, _ = extract_subcells(amorphous_tio2, f, 0.1, 2, 12, 20, np.random.default_rng(5))
    c, _ = extract_subcells(amorphous_tio2, f, 0.1, 2, 12, 20, np.random.default_rng(6))
    assert len(a) == 20
    assert [s.indices for s in a] == [s.indices for s in b]
    assert [s.indices for s in a] != [s.indices for s in c]


def test_any_composition_widens_the_filter(amorphous_tio2):
    f = parse_formula("TiO2")
    strict, _ = extract_subcells(amorphous_tio2, f, 0.2, 2, 8, 10_000, np.random.default_rng(0))
    wide, _ = extract_subcells(amorphous_tio2, f, 0.2, 2, 8, 10_000, np.random.default_rng(0), any_composition=True)
    assert len(wide) > len(strict)
    off = [s for s in wide if Counter(s.atoms.get_chemical_symbols())["O"] != 2 * Counter(s.atoms.get_chemical_symbols())["Ti"]]
    assert off and all(2 <= s.n_atoms <= 8 for s in off)


def test_contacts_made_by_the_cut_are_pushed_apart(amorphous_tio2):
    f = parse_formula("TiO2")
    cut, _ = extract_subcells(amorphous_tio2, f, 0.1, 2, 12, 200, np.random.default_rng(2), sizes=[6], push_cut_contacts=False)
    pushed, _ = extract_subcells(amorphous_tio2, f, 0.1, 2, 12, 200, np.random.default_rng(2), sizes=[6])
    assert [s.indices for s in cut] == [s.indices for s in pushed]  # the same boxes, only atoms moved
    # the packed parent has no overlaps, but making a box periodic brings its faces together
    assert min(minimum_contact_ratio(s.atoms, own_images=False) for s in cut) < 0.6
    for a, b in zip(cut, pushed):
        assert np.allclose(a.atoms.cell.array, b.atoms.cell.array)
        assert a.pushed == 0.0
        assert minimum_contact_ratio(b.atoms, own_images=False) >= 0.95 - 1e-9
        step = b.atoms.get_scaled_positions() - a.atoms.get_scaled_positions()
        moved = np.linalg.norm((step - np.round(step)) @ a.atoms.cell.array, axis=1)
        assert moved.max() == pytest.approx(b.pushed, abs=1e-9)  # the recorded move is the real one
        if minimum_contact_ratio(a.atoms, own_images=False) >= 0.95:
            assert b.pushed == 0.0  # a box without crowded contacts is left exactly as cut
    assert 0 < max(s.pushed for s in pushed) < 2.0
