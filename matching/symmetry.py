"""Space groups of relaxed products, found with spglib over a ladder of tolerances."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import numpy as np

# spglib's C core prints "ssm_get_exact_positions failed" and the like to stderr for every cell it
# cannot symmetrize at a given tolerance; the ladder expects such failures, a terminal user cannot act on them.
os.environ.setdefault("SPGLIB_WARNING", "OFF")
import spglib  # noqa: E402
from pymatgen.core import Lattice, Structure

# Tolerances in A, tightest first. Products of a machine-learned relaxation are slightly rattled,
# so a tight tolerance alone often says P1; the ladder reports the most symmetric answer and
# the tightest tolerance that gives it.
SYMPREC_LADDER: tuple[float, ...] = (0.01, 0.05, 0.1)


@dataclass(frozen=True)
class Symmetry:
    """Space group of a structure and the tolerance it was found at."""

    symbol: str
    number: int
    symprec: float


def _spglib_cell(structure: Structure) -> Any:
    """(lattice, fractional positions, atomic numbers) as spglib takes them (its stubs say nested sequences;
    it takes arrays)."""
    return (structure.lattice.matrix, structure.frac_coords, np.array(structure.atomic_numbers))


def find_symmetry(structure: Structure, ladder: tuple[float, ...] = SYMPREC_LADDER) -> Symmetry:
    """The space group with the most symmetry operations over the ladder (ties: tightest tolerance)."""
    cell = _spglib_cell(structure)
    best = Symmetry("P1", 1, ladder[0])
    best_ops = 1
    for symprec in ladder:
        try:
            data = spglib.get_symmetry_dataset(cell, symprec=symprec)
        except Exception:  # spglib raises on degenerate cells in 2.x
            data = None
        if data is None:
            continue
        n_ops = len(data.rotations)
        if n_ops > best_ops:
            best, best_ops = Symmetry(str(data.international), int(data.number), symprec), n_ops
    return best


def _primitive(structure: Structure, symprec: float) -> tuple[Lattice, int]:
    """The primitive cell's lattice and atom count (spglib), the structure's own when spglib finds none."""
    found = spglib.standardize_cell(_spglib_cell(structure), to_primitive=True, no_idealize=True, symprec=symprec)
    return (structure.lattice, len(structure)) if found is None else (Lattice(found[0]), len(found[2]))


def primitive_size(structure: Structure, symprec: float = 0.01) -> int:
    """Atoms in the primitive cell: a subcell of N atoms can only become this crystal if it divides N."""
    return _primitive(structure, symprec)[1]


def longest_edge(structure: Structure, symprec: float = 0.01) -> float:
    """The longest edge (A) of the crystal's most compact cell (its primitive cell, Niggli-reduced: the
    shortest basis). Every cell of the crystal has an edge at least this long, so a subcell box, and the
    amorphous cell it is cut from, must reach it at their density for the crystal to form in them."""
    lattice, _ = _primitive(structure, symprec)
    return float(max(lattice.get_niggli_reduced_lattice().abc))
