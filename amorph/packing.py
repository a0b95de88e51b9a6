"""Stage 1: the random starting cell, with overlapping atoms pushed apart.

Written here rather than taken from a library: ASE and pymatgen have no random-packing
routine, and the soft-sphere push is a few lines of numpy on top of ASE's neighbour list.
"""

from __future__ import annotations

import numpy as np
from ase import Atoms
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list

from amorph.composition import Formula

# Two atoms "touch" at this fraction of the sum of their covalent radii. Bonds in solids sit at
# roughly 0.85-1.0 x that sum, so nothing the MD will want is forbidden, but cores never overlap.
CONTACT_FRACTION = 0.8


def contact_distances(numbers: np.ndarray) -> np.ndarray:
    """Pairwise contact distance matrix over element types, indexed by atomic number."""
    radii = covalent_radii[numbers]
    return CONTACT_FRACTION * (radii[:, None] + radii[None, :])


def random_packing(
    formula: Formula,
    n_atoms: int,
    volume: float,
    rng: np.random.Generator,
    max_iterations: int = 5000,
) -> Atoms:
    """Atoms of the formula at uniform random positions in a cubic cell of the given volume.

    Overlaps are removed by steepest descent on the soft-sphere energy
    sum_pairs 0.5 (d0 - r)^2 for r < d0, until no pair is closer than 0.95 d0.
    """
    units = n_atoms // formula.atoms_per_formula_unit
    symbols: list[str] = []
    for el, amount in formula.composition.items():
        symbols += [el.symbol] * int(round(amount)) * units
    rng.shuffle(symbols)
    length = volume ** (1.0 / 3.0)
    atoms = Atoms(symbols, cell=np.eye(3) * length, pbc=True)
    atoms.set_scaled_positions(rng.random((len(symbols), 3)))

    numbers = atoms.numbers
    d0_table = contact_distances(np.arange(len(covalent_radii)))
    cutoff = _largest_contact(numbers, d0_table)
    for _ in range(max_iterations):
        i, j, dist, vec = neighbor_list("ijdD", atoms, cutoff)
        d0 = d0_table[numbers[i], numbers[j]]
        overlap = d0 - dist
        close = overlap > 0
        if not np.any(overlap > 0.05 * d0):
            break
        # Push each atom away from its overlapping neighbours (vec points from i to j).
        push = np.zeros_like(atoms.positions)
        unit = vec[close] / np.maximum(dist[close], 1e-6)[:, None]
        np.add.at(push, i[close], -0.5 * overlap[close][:, None] * unit)
        step = np.linalg.norm(push, axis=1, keepdims=True)
        push *= np.minimum(1.0, 0.3 / np.maximum(step, 1e-12))  # at most 0.3 A per move
        atoms.positions += push
        atoms.wrap()
    return atoms


def minimum_contact_ratio(atoms: Atoms) -> float:
    """Smallest distance / contact distance over all pairs: >= 0.95 after packing."""
    d0_table = contact_distances(np.arange(len(covalent_radii)))
    i, j, dist = neighbor_list("ijd", atoms, _largest_contact(atoms.numbers, d0_table))
    if len(dist) == 0:
        return float("inf")
    return float(np.min(dist / d0_table[atoms.numbers[i], atoms.numbers[j]]))


def _largest_contact(numbers: np.ndarray, d0_table: np.ndarray) -> float:
    present = np.unique(numbers)
    return float(d0_table[np.ix_(present, present)].max())
