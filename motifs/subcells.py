"""Stage 3: cut the amorphous cell into subcells on a fractional grid; each becomes a periodic cell.

A subcell is the box [lower, upper) in fractional coordinates of the parent cell, with lower and
upper on a grid of spacing d_frac. Written here (no library does this): counts of atoms in all
boxes come from one matrix product of per-axis membership masks, so even the paper's grid
(21 points per axis, 9 million boxes) is enumerated in about a second.

Making a box periodic puts atoms that sat on opposite faces next to each other, at whatever
distance the cut left them: in TiO2 cut from a packed cell, pairs as close as 0.4 A. Our choice
(the paper relaxes subcells as cut): those contacts are pushed apart first, with the same
soft-sphere push as the starting cell (amorph.packing.push_apart), so the potential does not
start from cores inside each other, far outside anything it was trained on: subcells relaxed as
cut with the closest contacts did not converge at all, pushed apart they did, in the usual number of
steps (measured: docs/method.md, "Contacts made by the cut are pushed apart"). `--keep-cut-contacts`
relaxes the subcells as cut.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable
from dataclasses import dataclass, replace

import numpy as np
from ase import Atoms

from amorph.composition import Formula
from amorph.packing import push_apart

# Moves of the soft-sphere push for a subcell's cut contacts; 1-13 were needed in the benchmark's
# TiO2 subcells. A subcell thinner than a bond can stay crowded whatever the atoms do: the cap
# stops the push there, and the cell relaxation widens it.
CUT_PUSH_ITERATIONS = 200


@dataclass(frozen=True)
class Subcell:
    """One local motif: where it came from and the periodic cell made of it."""

    id: int
    lower: tuple[float, float, float]
    upper: tuple[float, float, float]
    indices: tuple[int, ...]  # atom indices in the amorphous parent cell
    atoms: Atoms
    pushed: float = 0.0  # farthest any atom was moved to part contacts made by the cut, A
    reserve: bool = False  # beyond the budget: relaxed only if the answer is still inconclusive

    @property
    def n_atoms(self) -> int:
        return len(self.indices)

    @property
    def formula(self) -> str:
        return self.atoms.get_chemical_formula(mode="metal")


@dataclass(frozen=True)
class SubcellCensus:
    """How many boxes the grid gave and how many passed each filter: printed and recorded."""

    boxes: int
    in_size_range: int
    allowed: int
    distinct: int
    selected: int
    reserve: int = 0  # drawn beyond the budget, for an answer still inconclusive after it


@dataclass(frozen=True)
class SizeLimit:
    """The most atoms a subcell may hold, and why: the preset's n_max, raised where a known
    polymorph's primitive cell is larger, but never past half the starting cell."""

    n_max: int
    raised_from: int | None  # the setting's n_max when it was raised, else None
    cap: int  # half the starting cell: a larger subcell is no longer a local motif


def size_limit(n_max: int, fit_polymorphs: bool, cell_atoms: int, primitive_sizes: Iterable[int]) -> SizeLimit:
    """A subcell of N atoms can only relax into a crystal whose primitive cell fits in it (N a
    multiple of its size), so the size range must reach the largest primitive cell of the known
    polymorphs, or those polymorphs can never be the answer. One general rule, read from the
    database, not tuned per formula. The cap keeps a subcell a local motif cut from a larger
    amorphous cell: without it a 32-atom polymorph would need subcells of most of a 48-atom cell."""
    cap = max(1, cell_atoms // 2)
    largest = max(primitive_sizes, default=0)
    if not fit_polymorphs or largest <= n_max:
        return SizeLimit(n_max, None, cap)
    raised = min(largest, max(cap, n_max))
    return SizeLimit(raised, n_max if raised > n_max else None, cap)


def grid_intervals(d_frac: float) -> list[tuple[float, float]]:
    """All (lower, upper) pairs with upper > lower on the grid 0, d_frac, ..., 1."""
    n = int(np.floor(1.0 / d_frac + 1e-9))
    points = [round(k * d_frac, 10) for k in range(n + 1)]
    if points[-1] < 1.0:
        points.append(1.0)
    return [(a, b) for a, b in itertools.combinations(points, 2)]


def allowed_counts(
    formula: Formula,
    n_min: int,
    n_max: int,
    sizes: Iterable[int] | None,
) -> set[int]:
    """Atom counts a stoichiometric subcell may have: whole multiples of the formula in range.

    `sizes` (when given) further keeps only counts that are multiples of one of them; the
    pipeline passes the primitive-cell sizes of the known polymorphs, because a cell of N atoms
    can only relax into a crystal whose primitive cell size divides N.
    """
    per_unit = formula.atoms_per_formula_unit
    counts = {n for n in range(n_min, n_max + 1) if n % per_unit == 0}
    if sizes is not None:
        sizes = [s for s in sizes if s > 0]
        counts = {n for n in counts if any(n % s == 0 for s in sizes)}
    return counts


def extract_subcells(
    amorphous: Atoms,
    formula: Formula,
    d_frac: float,
    n_min: int,
    n_max: int,
    max_subcells: int,
    rng: np.random.Generator,
    sizes: Iterable[int] | None = None,
    any_composition: bool = False,
    push_cut_contacts: bool = True,
    reserve: int = 0,
) -> tuple[list[Subcell], SubcellCensus]:
    """Distinct subcells that pass the size and composition filters, at most max_subcells of them,
    then up to `reserve` more (flagged `reserve`).

    With any_composition=False (default) only whole multiples of the reduced formula are kept.
    With any_composition=True other compositions in the size range are kept too, and only the
    stoichiometric ones are subject to the `sizes` filter. When more remain than the budget, a
    uniform random sample (seeded) is taken, in grid order. The reserve is a further uniform sample
    of the rest, in random order, drawn after the budget's sample so that the budget's subcells are
    the same with or without it; it is relaxed in rounds, in that order, only while the answer is
    inconclusive (amorph.md.crystallize). With push_cut_contacts (default) atoms
    brought too close by the new periodic boundaries are pushed apart (see the module docstring).
    """
    frac = amorphous.get_scaled_positions(wrap=True)
    intervals = np.array(grid_intervals(d_frac))  # (P, 2)
    # inside[axis][p, n]: atom n lies in interval p along that axis
    inside = [
        (frac[None, :, ax] >= intervals[:, 0, None]) & (frac[None, :, ax] < intervals[:, 1, None]) for ax in range(3)
    ]
    p = len(intervals)
    xy = (inside[0][:, None, :] & inside[1][None, :, :]).reshape(p * p, -1).astype(np.float64)
    z = inside[2].astype(np.float64)

    def box_counts(mask: np.ndarray) -> np.ndarray:
        return np.rint((xy * mask) @ z.T).astype(np.int64).reshape(p, p, p)

    total = box_counts(np.ones(len(amorphous)))
    in_range = (total >= n_min) & (total <= n_max)
    symbols = np.array(amorphous.get_chemical_symbols())
    per_element = {el.symbol: box_counts((symbols == el.symbol).astype(np.float64)) for el in formula.composition}
    # stoichiometric: every element count is k x its amount in the reduced formula, same k for all
    units = total // formula.atoms_per_formula_unit
    stoichiometric = in_range & (total % formula.atoms_per_formula_unit == 0)
    for el, amount in formula.composition.items():
        stoichiometric &= per_element[el.symbol] == units * int(round(amount))
    counts_ok = np.isin(total, sorted(allowed_counts(formula, n_min, n_max, sizes)))
    keep = stoichiometric & counts_ok
    if any_composition:
        keep |= in_range & ~stoichiometric
    candidates = np.argwhere(keep)

    # Distinct atom sets: per-axis membership as Python int bit masks, intersected per box.
    bits = [[_bitmask(row) for row in inside[ax]] for ax in range(3)]
    seen: dict[int, tuple[int, int, int]] = {}
    for ix, iy, iz in candidates:
        key = bits[0][ix] & bits[1][iy] & bits[2][iz]
        seen.setdefault(key, (int(ix), int(iy), int(iz)))
    boxes = sorted(seen.values())
    picked, spare = list(range(len(boxes))), []
    if len(boxes) > max_subcells:
        chosen = rng.choice(len(boxes), size=max_subcells, replace=False)
        picked = sorted(int(k) for k in chosen)
        if reserve > 0:
            spare = [int(k) for k in rng.permutation(np.setdiff1d(np.arange(len(boxes)), chosen))[:reserve]]

    def cut(keys: list[int], first_id: int, is_reserve: bool) -> list[Subcell]:
        cells: list[Subcell] = []
        for n, k in enumerate(keys):
            ix, iy, iz = boxes[k]
            sub = make_subcell(amorphous, frac, first_id + n, intervals[ix], intervals[iy], intervals[iz], bits[0][ix] & bits[1][iy] & bits[2][iz])
            cells.append(replace(sub, reserve=is_reserve))
        if push_cut_contacts and cells:
            moves = push_apart([s.atoms for s in cells], CUT_PUSH_ITERATIONS)
            cells = [replace(s, pushed=move) for s, move in zip(cells, moves)]
        return cells

    selected = cut(picked, 0, False)
    extra = cut(spare, len(selected), True)
    subcells = selected + extra
    census = SubcellCensus(
        boxes=p**3,
        in_size_range=int(in_range.sum()),
        allowed=len(candidates),
        distinct=len(seen),
        selected=len(selected),
        reserve=len(extra),
    )
    return subcells, census


def _bitmask(row: np.ndarray) -> int:
    return int.from_bytes(np.packbits(row, bitorder="little").tobytes(), "little")


def make_subcell(
    parent: Atoms,
    frac: np.ndarray,
    subcell_id: int,
    x: np.ndarray,
    y: np.ndarray,
    z: np.ndarray,
    members: int,
) -> Subcell:
    """The box as a periodic cell of its own: cell vectors scaled by the slice, coordinates rescaled."""
    indices = [n for n in range(len(parent)) if members >> n & 1]
    lower = np.array([x[0], y[0], z[0]])
    upper = np.array([x[1], y[1], z[1]])
    scale = upper - lower
    cell = parent.cell.array * scale[:, None]
    atoms = Atoms(
        numbers=parent.numbers[indices],
        cell=cell,
        scaled_positions=(frac[indices] - lower) / scale,
        pbc=True,
    )
    return Subcell(
        id=subcell_id,
        lower=(float(lower[0]), float(lower[1]), float(lower[2])),
        upper=(float(upper[0]), float(upper[1]), float(upper[2])),
        indices=tuple(indices),
        atoms=atoms,
    )
