"""Many periodic cells as one batch: the packing every batched engine shares.

As in torch-sim's `SimState`: the atoms of all cells are concatenated into per-atom tensors (N, ...),
per-cell quantities are stacked (B, ...), and `counts` (B,) says how many atoms each cell holds. A
state class names its per-atom fields in `PER_ATOM`; every other tensor field is per cell, and list
fields are per-cell values kept on the host (neighbour-list keys). `select`, `slice` and
`extend` (PackedCells) work on any such class, so the optimizer state, the packed input of a
forward pass and its result are packed, cut and joined in one way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields
from functools import cached_property
from typing import Any, ClassVar, Self

import numpy as np
import torch
from ase import Atoms


def cell_starts(counts: torch.Tensor) -> torch.Tensor:
    """Index of each cell's first atom in the packed arrays, (B,)."""
    return torch.cumsum(counts, 0) - counts


def atom_cells(counts: torch.Tensor) -> torch.Tensor:
    """The cell each packed atom belongs to (0..B-1), (N,)."""
    return torch.repeat_interleave(torch.arange(len(counts), device=counts.device), counts)


class Packed:
    """Mixin for dataclasses of packed cells (see the module docstring): joining them."""

    PER_ATOM: ClassVar[frozenset[str]] = frozenset()

    def extend(self, other: Self) -> Self:
        """These cells followed by other's."""
        return type(self).concat([self, other])

    @classmethod
    def concat(cls, parts: Sequence[Self]) -> Self:
        """The cells of all parts, in order (per-atom and per-cell fields alike are joined along dim 0)."""
        if len(parts) == 1:
            return parts[0]
        out: dict[str, Any] = {}
        for f in fields(parts[0]):  # type: ignore[arg-type]
            values: list[Any] = [getattr(p, f.name) for p in parts]
            if all(v is None for v in values):
                out[f.name] = None
            elif any(v is None for v in values):
                raise ValueError(f"cannot join cells where only some have {f.name}")
            elif isinstance(values[0], list):
                out[f.name] = [x for v in values for x in v]
            else:
                out[f.name] = torch.cat(values)
        return cls(**out)


class PackedCells(Packed):
    """Packed cells that know their atom counts (a `counts` field), so they can also be cut."""

    counts: torch.Tensor

    @property
    def n_cells(self) -> int:
        return int(self.counts.shape[0])

    @property
    def n_atoms(self) -> int:
        """From a per-atom field's length: no device sync, unlike counts.sum()."""
        return int(getattr(self, next(iter(self.PER_ATOM))).shape[0])

    @cached_property
    def atom_cell(self) -> torch.Tensor:
        """The cell of each atom (N,); computed once per state (counts never change in place)."""
        return atom_cells(self.counts)

    def _remade(self, per_atom: Any, per_cell: Any, host: Any) -> Self:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            value = getattr(self, f.name)
            if value is None:
                out[f.name] = None
            elif isinstance(value, list):
                out[f.name] = host(value)
            else:
                out[f.name] = per_atom(value) if f.name in self.PER_ATOM else per_cell(value)
        return type(self)(**out)

    def select(self, keep: torch.Tensor) -> Self:
        """Only the cells where keep (B,) is True, in their order."""
        atom_keep = keep[self.atom_cell]
        keep_host: list[bool] = []

        def host(values: list[Any]) -> list[Any]:
            if not keep_host:
                keep_host.extend(keep.tolist())  # one transfer, only for classes with host lists
            return [x for x, k in zip(values, keep_host) if k]

        return self._remade(lambda v: v[atom_keep], lambda v: v[keep], host)

    def slice(self, first: int, stop: int) -> Self:
        """Cells first..stop-1: a contiguous run, so their atoms are a contiguous run too (no copy)."""
        a0 = int(self.counts[:first].sum())
        a1 = a0 + int(self.counts[first:stop].sum())
        return self._remade(lambda v: v[a0:a1], lambda v: v[first:stop], lambda v: v[first:stop])


@dataclass
class CellBatch(PackedCells):
    """Cells packed for one forward pass: numbers (N,), positions (N, 3) in A, cells (B, 3, 3) row
    vectors, counts (B,), all torch (float64) on one device. `keys` name the cells across steps (so a
    neighbour list can be reused); None when the cells are one-off."""

    PER_ATOM = frozenset({"numbers", "positions"})

    numbers: torch.Tensor
    positions: torch.Tensor
    cells: torch.Tensor
    counts: torch.Tensor
    keys: list[int] | None = None

    @classmethod
    def from_atoms(cls, cells: Sequence[Atoms], device: str | torch.device = "cpu", keys: list[int] | None = None) -> CellBatch:
        return cls(
            torch.as_tensor(np.concatenate([c.numbers for c in cells]), dtype=torch.long, device=device),
            torch.as_tensor(np.concatenate([c.positions for c in cells]), dtype=torch.float64, device=device),
            torch.as_tensor(np.array([c.cell.array for c in cells]), dtype=torch.float64, device=device),
            torch.as_tensor([len(c) for c in cells], dtype=torch.long, device=device),
            keys,
        )

    def to_atoms(self) -> list[Atoms]:
        numbers, positions, cells = self.numbers.cpu().numpy(), self.positions.cpu().numpy(), self.cells.cpu().numpy()
        out, start = [], 0
        for b, n in enumerate(self.counts.tolist()):
            out.append(Atoms(numbers[start : start + n], positions=positions[start : start + n], cell=cells[b], pbc=True))
            start += n
        return out


@dataclass
class Evaluation:
    """One cell's energy (eV), forces (eV/A, shape (n, 3)) and stress (eV/A^3, 3x3, ASE sign)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray


@dataclass
class BatchResult(Packed):
    """Energies (B,) in eV, forces (N, 3) in eV/A, stresses (B, 3, 3) in eV/A^3 (ASE sign); float64 torch.

    It carries no counts (a result belongs to the batch it was computed for), so it is joined with
    `concat` (Packed) but not cut."""

    PER_ATOM = frozenset({"forces"})

    energies: torch.Tensor
    forces: torch.Tensor
    stresses: torch.Tensor

    @classmethod
    def from_evaluations(cls, evaluations: Sequence[Evaluation], device: str | torch.device) -> BatchResult:
        def as_tensor(x: Any) -> torch.Tensor:
            return torch.as_tensor(np.asarray(x), dtype=torch.float64, device=device)

        return cls(
            as_tensor([e.energy for e in evaluations]),
            as_tensor(np.concatenate([np.asarray(e.forces).reshape(-1, 3) for e in evaluations])),
            as_tensor(np.array([np.asarray(e.stress).reshape(3, 3) for e in evaluations])),
        )

    def evaluations(self, counts: Sequence[int]) -> list[Evaluation]:
        energies, forces, stresses = self.energies.cpu().numpy(), self.forces.cpu().numpy(), self.stresses.cpu().numpy()
        out, start = [], 0
        for b, n in enumerate(counts):
            out.append(Evaluation(float(energies[b]), forces[start : start + n], stresses[b]))
            start += n
        return out

    @classmethod
    def failed(cls, batch: CellBatch) -> BatchResult:
        """NaN for every cell of the batch: what a cell whose evaluation raised gets."""
        like = batch.positions
        nan = float("nan")
        return cls(like.new_full((batch.n_cells,), nan), like.new_full((batch.n_atoms, 3), nan), like.new_full((batch.n_cells, 3, 3), nan))
