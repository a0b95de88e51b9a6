"""Stage 1: the random starting cell, with overlapping atoms pushed apart.

Written here rather than taken from a library: ASE and pymatgen have no random-packing
routine, and the soft-sphere push is a few lines of torch on top of the engine's neighbour
search. The same push parts the contacts that cutting makes in subcells (motifs.subcells).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from ase import Atoms
from ase.data import covalent_radii
from ase.neighborlist import neighbor_list

from amorph.composition import Formula
from amorph.md.neighbours import MAX_IMAGES_PER_AXIS, edge_vectors, image_extents, periodic_edges
from amorph.md.state import atom_cells

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

    Overlaps are then removed by push_apart.
    """
    units = n_atoms // formula.atoms_per_formula_unit
    symbols: list[str] = []
    for el, amount in formula.composition.items():
        symbols += [el.symbol] * int(round(amount)) * units
    rng.shuffle(symbols)
    length = volume ** (1.0 / 3.0)
    atoms = Atoms(symbols, cell=np.eye(3) * length, pbc=True)
    atoms.set_scaled_positions(rng.random((len(symbols), 3)))

    push_apart([atoms], max_iterations)
    return atoms


def push_apart(cells: Sequence[Atoms], max_iterations: int) -> list[float]:
    """Remove overlaps in every cell, in place; return per cell the farthest any atom was moved, A.

    Steepest descent on the soft-sphere energy sum_pairs 0.5 (d0 - r)^2 for r < d0, at most
    0.3 A per atom per move, until no pair of a cell is closer than 0.95 d0 (that cell then stops)
    or max_iterations is spent. All cells move together, listed by the engine's periodic neighbour
    search (md.neighbours), so thousands of subcells take seconds rather than minutes.
    An atom's contact with its own periodic image is left out: no move of atoms changes it,
    only the cell can (the relaxation's cell filter does that in a subcell thinner than a bond).
    """
    if not cells:
        return []
    numbers = np.concatenate([a.numbers for a in cells])
    d0_table = torch.as_tensor(contact_distances(np.arange(len(covalent_radii))))
    cutoff = _largest_contact(numbers, d0_table.numpy())
    counts = torch.tensor([len(a) for a in cells])
    lattices = torch.tensor(np.array([a.cell.array for a in cells]), dtype=torch.float64)
    inverses = torch.linalg.inv(lattices)
    frac = torch.tensor(np.concatenate([a.get_scaled_positions(wrap=True) for a in cells]), dtype=torch.float64)
    z = torch.as_tensor(numbers)
    cell_of_atom = atom_cells(counts)
    moved = torch.zeros_like(frac)
    # A cell too thin for the neighbour search (a collapsed box) is left as it is; its relaxation fails.
    active = (image_extents(lattices, cutoff) <= MAX_IMAGES_PER_AXIS).all(dim=1)
    for _ in range(max_iterations):
        ids = active.nonzero().flatten()
        if len(ids) == 0:
            break
        mine = active[cell_of_atom]
        f, local = frac[mine], atom_cells(counts[ids])
        (i, j), shift = periodic_edges(f, lattices[ids], counts[ids], cutoff)
        movable = i != j
        i, j, shift = i[movable], j[movable], shift[movable]
        vec = edge_vectors(f, (i, j), shift, lattices[ids][local[i]])  # from i to j
        dist = vec.norm(dim=1)
        d0 = d0_table[z[mine][i], z[mine][j]]
        overlap = d0 - dist
        crowded = torch.zeros(len(ids), dtype=torch.bool)
        crowded[local[i][overlap > 0.05 * d0]] = True
        # Push each atom of a crowded cell away from its overlapping neighbours.
        close = (overlap > 0) & crowded[local[i]]
        push = torch.zeros_like(f)
        push.index_add_(0, i[close], -0.5 * overlap[close, None] * vec[close] / dist[close, None].clamp_min(1e-6))
        step = push.norm(dim=1, keepdim=True)
        push *= (0.3 / step.clamp_min(1e-12)).clamp(max=1.0)  # at most 0.3 A per move
        f = f + torch.einsum("nk,nkl->nl", push, inverses[ids][local])
        frac[mine] = f - torch.floor(f)
        moved[mine] += push
        active[ids[~crowded]] = False
    farthest = torch.zeros(len(cells), dtype=torch.float64).scatter_reduce(0, cell_of_atom, moved.norm(dim=1), "amax")
    for atoms, part in zip(cells, torch.split(frac, counts.tolist())):
        atoms.set_scaled_positions(part.numpy())
    return farthest.tolist()


def minimum_contact_ratio(atoms: Atoms, own_images: bool = True) -> float:
    """Smallest distance / contact distance over all pairs: >= 0.95 after packing (and, leaving out
    each atom's contact with its own images, after push_apart)."""
    d0_table = contact_distances(np.arange(len(covalent_radii)))
    i, j, dist = neighbor_list("ijd", atoms, _largest_contact(atoms.numbers, d0_table))
    if not own_images:
        i, j, dist = i[i != j], j[i != j], dist[i != j]
    if len(dist) == 0:
        return float("inf")
    return float(np.min(dist / d0_table[atoms.numbers[i], atoms.numbers[j]]))


def _largest_contact(numbers: np.ndarray, d0_table: np.ndarray) -> float:
    present = np.unique(numbers)
    return float(d0_table[np.ix_(present, present)].max())
