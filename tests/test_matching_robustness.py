"""Products relaxed by a machine-learned potential come out strained and rattled: naming must hold up.

Every database entry, rattled by 0.05 A and strained anisotropically by up to 3%, is named as itself by
the identification step (same code path as a run); supercells and other cell choices too; a structure
of the wrong stoichiometry never takes a known name.
"""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Structure

from amorph.matching.database import known_formulas, known_polymorphs
from amorph.matching.identify import Product, identify
from amorph.matching.symmetry import find_symmetry

ENTRIES = [(f, p.name) for f in known_formulas() for p in known_polymorphs(f)]


def _distorted(structure: Structure, seed: int) -> Structure:
    rng = np.random.default_rng(seed)
    s = structure.copy()
    s.apply_strain(rng.uniform(-0.03, 0.03, 3))  # anisotropic, up to 3% per axis
    displacements = rng.normal(size=(len(s), 3))
    displacements *= 0.05 / np.linalg.norm(displacements, axis=1, keepdims=True)  # every atom moved 0.05 A
    for i, d in enumerate(displacements):
        s.translate_sites([i], d, frac_coords=False, to_unit_cell=True)
    return s


def _name(structure: Structure, formula: str) -> str:
    labels = identify([Product(0, structure, 0.0, find_symmetry(structure))], known_polymorphs(formula))
    return labels[0].label


@pytest.mark.parametrize(("formula", "name"), ENTRIES, ids=[f"{f}-{n}" for f, n in ENTRIES])
def test_rattled_and_strained_entry_is_named_as_itself(formula: str, name: str) -> None:
    entry = next(p for p in known_polymorphs(formula) if p.name == name)
    assert _name(_distorted(entry.structure, seed=len(name)), formula) == name


def test_supercells_and_other_cell_choices_match():
    tio2 = {p.name: p.structure for p in known_polymorphs("TiO2")}
    anatase = tio2["anatase"]
    assert _name(anatase * (2, 1, 1), "TiO2") == "anatase"
    assert _name(anatase.get_primitive_structure(), "TiO2") == "anatase"
    sheared = anatase.copy()
    sheared.make_supercell([[1, 1, 0], [0, 1, 0], [0, 0, 1]])  # same lattice, another (oblique) cell
    assert _name(sheared, "TiO2") == "anatase"
    assert _name(tio2["rutile"] * (1, 1, 3), "TiO2") == "rutile"


def test_wrong_stoichiometry_never_takes_a_known_name():
    rutile = known_polymorphs("TiO2")[0].structure * (2, 1, 1)
    rutile.remove_sites([len(rutile) - 1])  # one O vacancy: Ti4O7
    labels = identify([Product(0, rutile, 0.0, find_symmetry(rutile))], known_polymorphs("TiO2"))
    assert not labels[0].known and labels[0].label == "unknown-1"
    swapped = known_polymorphs("TiO2")[0].structure.copy()
    swapped.replace_species({"Ti": "Sn"})  # right stoichiometry, wrong chemistry
    labels = identify([Product(0, swapped, 0.0, find_symmetry(swapped))], known_polymorphs("TiO2"))
    assert not labels[0].known


def test_unknown_products_are_described():
    odd = Structure([[4.0, 0, 0], [0, 4.4, 0], [0, 0, 5.0]], ["Ti", "O", "O"], [[0, 0, 0], [0.5, 0.1, 0.3], [0.1, 0.5, 0.7]])
    [label] = identify([Product(0, odd, 0.0, find_symmetry(odd))], known_polymorphs("TiO2")).values()
    assert label.label == "unknown-1" and label.structure_type.startswith("AB2_")
    assert label.closest_known in {p.name for p in known_polymorphs("TiO2")}
    assert 0.0 < label.closest_distance <= 1.0
