"""FIRE on atoms and cell for a whole batch of cells at once: ASE's FIRE + FrechetCellFilter, vectorised.

Why our own: running one ASE FIRE + FrechetCellFilter per cell costs ~3.7 ms of host time per cell and
step on this machine (scipy's logm and nine expm_frechet calls per gradient), more than a batched
GPU forward pass per cell; at the paper's 10^4 subcells x ~300 steps that alone would be hours. Here
the same algorithm runs as a few tensor operations for all cells in flight, on the model's device.

The mathematics is ASE's (ase.optimize.FIRE with its defaults, ase.filters.FrechetCellFilter with
exp_cell_factor = number of atoms), so the trajectories match the one-at-a-time path to rounding:
- degrees of freedom per cell: u, the positions in the undeformed cell (positions = u F^T), and
  Y = ecf * log(F), where F is the deformation gradient (cell = cell0 F^T). ASE recomputes Y each step
  as logm of the current F; we keep Y itself (the same number, without a logm).
- generalised forces: f F on atoms; on Y, L(X^T, G) / ecf with X = Y / ecf, G = virial F^-T and
  L the Frechet derivative of expm, taken from the block identity expm([[A, E], [0, A]]) = [[e^A, L(A, E)], [0, e^A]].
- convergence: the largest row norm of those (n + 3) x 3 forces below fmax (ASE's criterion).
All state is float64 (ASE works in float64) and packed: atoms of all cells in one (N, 3) tensor,
per-cell quantities in (B, ...) tensors (md.state.PackedCells: one way to select and extend).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from amorph.md.state import CellBatch, PackedCells

# ase.optimize.FIRE defaults
DT, MAXSTEP, DTMAX, NMIN, FINC, FDEC, ASTART, FA = 0.1, 0.2, 1.0, 5, 1.1, 0.5, 0.1, 0.99


def segment_sum(values: torch.Tensor, segment: torch.Tensor, n_segments: int) -> torch.Tensor:
    """Sum of values (N,) per segment (N,) -> (n_segments,)."""
    return torch.zeros(n_segments, dtype=values.dtype, device=values.device).index_add_(0, segment, values)


def expm_frechet_adjoint(x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
    """L(X^T, G) for a batch (B, 3, 3): the gradient of <expm(X), G> with respect to X."""
    b = x.shape[0]
    block = torch.zeros(b, 6, 6, dtype=x.dtype, device=x.device)
    xt = x.transpose(1, 2)
    block[:, :3, :3] = xt
    block[:, 3:, 3:] = xt
    block[:, :3, 3:] = g
    return torch.linalg.matrix_exp(block)[:, :3, 3:]


@dataclass
class FireState(PackedCells):
    """Packed optimizer state of the cells in flight (see the module docstring and md.state)."""

    PER_ATOM = frozenset({"numbers", "u", "v_atoms"})

    numbers: torch.Tensor  # (N,) atomic numbers
    u: torch.Tensor  # (N, 3) positions in the undeformed cell
    v_atoms: torch.Tensor  # (N, 3) FIRE velocity, atom rows
    counts: torch.Tensor  # (B,) atoms per cell
    cell0: torch.Tensor  # (B, 3, 3) cell at the start
    y: torch.Tensor  # (B, 3, 3) ecf * log(F)
    v_cell: torch.Tensor  # (B, 3, 3) FIRE velocity, cell rows
    ecf: torch.Tensor  # (B,) exp_cell_factor = atoms in the cell
    dt: torch.Tensor  # (B,)
    a: torch.Tensor  # (B,)
    n_fire: torch.Tensor  # (B,) FIRE's Nsteps counter (steps since the last uphill reset)
    started: torch.Tensor  # (B,) bool: FIRE has a velocity (ASE's vel is None before the first step)
    steps: torch.Tensor  # (B,) optimizer steps taken
    initial_energy: torch.Tensor  # (B,) energy before the first step, eV (NaN until evaluated)
    ids: list[int]  # the caller's index of each cell (host values: only ever read back there)
    keys: list[int] | None = None  # neighbour-list names of the cells (md.state.CellBatch.keys)

    @classmethod
    def start(cls, batch: CellBatch, ids: Sequence[int]) -> FireState:
        """Fresh state for the cells of a packed batch; ids are the caller's indices for them."""
        cells, counts = batch.cells, batch.counts
        b = cells.shape[0]
        dev, dt = cells.device, cells.dtype
        return cls(
            numbers=batch.numbers.clone(),
            u=batch.positions.clone(),
            v_atoms=torch.zeros_like(batch.positions),
            counts=counts.clone(),
            cell0=cells.clone(),
            y=torch.zeros(b, 3, 3, dtype=dt, device=dev),
            v_cell=torch.zeros(b, 3, 3, dtype=dt, device=dev),
            ecf=counts.to(dt),
            dt=torch.full((b,), DT, dtype=dt, device=dev),
            a=torch.full((b,), ASTART, dtype=dt, device=dev),
            n_fire=torch.zeros(b, dtype=torch.long, device=dev),
            started=torch.zeros(b, dtype=torch.bool, device=dev),
            steps=torch.zeros(b, dtype=torch.long, device=dev),
            initial_energy=torch.full((b,), math.nan, dtype=dt, device=dev),
            ids=list(ids),
            keys=batch.keys,
        )

    def current(self) -> CellBatch:
        """The cells as they stand now, packed for the potential."""
        positions, lattices = self.structures()
        return CellBatch(self.numbers, positions, lattices, self.counts, self.keys)

    def record_initial(self, energies: torch.Tensor) -> None:
        """Keep the energy of cells not stepped yet (their energy before relaxation)."""
        self.initial_energy = torch.where(self.steps == 0, energies, self.initial_energy)

    def deformation(self) -> torch.Tensor:
        """F = expm(Y / ecf), (B, 3, 3)."""
        return torch.linalg.matrix_exp(self.y / self.ecf[:, None, None])

    def structures(self) -> tuple[torch.Tensor, torch.Tensor]:
        """Current Cartesian positions (N, 3) and cells (B, 3, 3): positions = u F^T, cell = cell0 F^T."""
        f = self.deformation()
        positions = torch.einsum("nj,nkj->nk", self.u, f[self.atom_cell])
        return positions, self.cell0 @ f.transpose(1, 2)

    def generalised_forces(
        self, forces: torch.Tensor, stress: torch.Tensor, cells: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """FrechetCellFilter's forces: atom rows f F (N, 3) and cell rows (B, 3, 3), from ASE-sign stress."""
        f = self.deformation()
        volume = torch.linalg.det(cells).abs()
        virial = -volume[:, None, None] * stress
        g = virial @ torch.linalg.inv(f.transpose(1, 2))
        cell_rows = expm_frechet_adjoint(self.y / self.ecf[:, None, None], g) / self.ecf[:, None, None]
        atom_rows = torch.einsum("nj,njk->nk", forces, f[self.atom_cell])
        return atom_rows, cell_rows

    def max_force(self, atom_rows: torch.Tensor, cell_rows: torch.Tensor) -> torch.Tensor:
        """Largest row norm per cell over atom and cell rows (ASE's convergence measure), (B,)."""
        atom_norm = atom_rows.norm(dim=1)
        per_cell = torch.zeros(self.n_cells, dtype=atom_norm.dtype, device=atom_norm.device)
        per_cell = per_cell.scatter_reduce(0, self.atom_cell, atom_norm, reduce="amax", include_self=True)
        return torch.maximum(per_cell, cell_rows.norm(dim=2).amax(dim=1))

    def step(self, atom_rows: torch.Tensor, cell_rows: torch.Tensor, move: torch.Tensor) -> None:
        """One FIRE step (ase.optimize.FIRE.step, downhill_check off) for the cells where move (B,) is True."""
        b, idx = self.n_cells, self.atom_cell

        def vdot(xa: torch.Tensor, xc: torch.Tensor, ya: torch.Tensor, yc: torch.Tensor) -> torch.Tensor:
            return segment_sum((xa * ya).sum(1), idx, b) + (xc * yc).sum((1, 2))

        vf = vdot(atom_rows, cell_rows, self.v_atoms, self.v_cell)
        grad2 = vdot(atom_rows, cell_rows, atom_rows, cell_rows)
        vel2 = vdot(self.v_atoms, self.v_cell, self.v_atoms, self.v_cell)
        downhill = self.started & (vf > 0.0)
        reset = self.started & ~downhill
        # downhill: mix the velocity towards the force
        mix = torch.where(downhill, self.a, torch.zeros_like(self.a))
        scale = torch.where(downhill, torch.sqrt(vel2) / torch.sqrt(torch.where(downhill, grad2, 1.0)), 0.0)
        keep_v = torch.where(reset, 0.0, 1.0 - mix)
        v_atoms = keep_v[idx, None] * self.v_atoms + (mix * scale)[idx, None] * atom_rows
        v_cell = keep_v[:, None, None] * self.v_cell + (mix * scale)[:, None, None] * cell_rows
        accelerate = downhill & (self.n_fire > NMIN)
        dt = torch.where(accelerate, torch.clamp(self.dt * FINC, max=DTMAX), self.dt)
        a = torch.where(accelerate, self.a * FA, self.a)
        n_fire = torch.where(downhill, self.n_fire + 1, self.n_fire)
        dt = torch.where(reset, dt * FDEC, dt)
        a = torch.where(reset, torch.full_like(a, ASTART), a)
        n_fire = torch.where(reset, torch.zeros_like(n_fire), n_fire)
        # velocity Verlet-like update and the capped displacement
        v_atoms = v_atoms + dt[idx, None] * atom_rows
        v_cell = v_cell + dt[:, None, None] * cell_rows
        dr_atoms, dr_cell = dt[idx, None] * v_atoms, dt[:, None, None] * v_cell
        norm = torch.sqrt(vdot(dr_atoms, dr_cell, dr_atoms, dr_cell))
        cap = torch.where(norm > MAXSTEP, MAXSTEP / torch.where(norm > 0, norm, 1.0), 1.0)
        m = move
        ma = move[idx]
        self.u = torch.where(ma[:, None], self.u + cap[idx, None] * dr_atoms, self.u)
        self.y = torch.where(m[:, None, None], self.y + cap[:, None, None] * dr_cell, self.y)
        self.v_atoms = torch.where(ma[:, None], v_atoms, self.v_atoms)
        self.v_cell = torch.where(m[:, None, None], v_cell, self.v_cell)
        self.dt = torch.where(m, dt, self.dt)
        self.a = torch.where(m, a, self.a)
        self.n_fire = torch.where(m, n_fire, self.n_fire)
        self.started = self.started | m
        self.steps = self.steps + m.long()

