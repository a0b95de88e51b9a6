"""Relaxation of positions and cell together, and the checks that say whether to trust it."""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.data import covalent_radii
from ase.filters import FrechetCellFilter
from ase.neighborlist import neighbor_list
from ase.optimize import FIRE
from scipy.spatial import cKDTree


@dataclass
class RelaxResult:
    """What one relaxation produced. Energies are total, in eV."""

    atoms: Atoms
    initial_energy: float
    final_energy: float
    steps: int
    converged: bool
    error: str = ""  # set when the relaxation raised instead of finishing

    @property
    def n_atoms(self) -> int:
        return len(self.atoms)


# A relaxation whose cell grows or shrinks more than this factor in volume has blown up: both engines
# stop it at the step it happens (a collapsing cell's neighbour list would grow without bound) and
# invalid_reason marks it.
VOLUME_LIMIT = 4.0


class _VolumeRanAway(Exception):
    """Raised by the per-step watch in `relax`, to stop FIRE there."""


def relax(atoms: Atoms, calculator: Calculator, fmax: float, max_steps: int) -> RelaxResult:
    """FIRE on atoms and cell (Frechet cell filter, so the cell and the atoms share one force scale)."""
    atoms = atoms.copy()
    atoms.calc = calculator
    try:
        initial = float(atoms.get_potential_energy())
    except Exception as err:  # a potential that cannot even evaluate the start
        return RelaxResult(atoms, math.nan, math.nan, 0, False, f"{type(err).__name__}: {err}")
    opt = FIRE(FrechetCellFilter(atoms), logfile=None)
    volume0 = abs(atoms.get_volume())

    def watch_volume() -> None:
        if not volume0 / VOLUME_LIMIT < abs(atoms.get_volume()) < volume0 * VOLUME_LIMIT:
            raise _VolumeRanAway

    opt.attach(watch_volume, interval=1)
    try:
        converged = bool(opt.run(fmax=fmax, steps=max_steps))
        final = float(atoms.get_potential_energy())
    except _VolumeRanAway:  # invalid_reason names it from the volume
        energy = float(atoms.get_potential_energy())  # before _detached takes the calculator away
        return RelaxResult(_detached(atoms), initial, energy, opt.nsteps, False)
    except Exception as err:  # keep the failure as a result; never lose the subcell
        return RelaxResult(_detached(atoms), initial, math.nan, opt.nsteps, False, f"{type(err).__name__}: {err}")
    return RelaxResult(_detached(atoms), initial, final, opt.nsteps, converged)


def _detached(atoms: Atoms) -> Atoms:
    """The relaxed cell without the (shared) calculator, whose cached results belong to whatever it saw last."""
    atoms.calc = None
    return atoms


def fusion_thresholds(numbers: np.ndarray, fusion_distance: float, scale: float = 1.0) -> np.ndarray:
    """Per element pair: scale x min(fusion_distance, 0.6 x sum of covalent radii), indexed by Z."""
    radii = covalent_radii
    return scale * np.minimum(fusion_distance, 0.6 * (radii[:, None] + radii[None, :]))


def close_pairs(atoms: Atoms, cutoff: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pairs (i, j, distance) of atoms closer than cutoff, each pair at least once (nearest image).

    The melt-quench checks every MD step of every replica for fused atoms; ASE's neighbor_list took
    about 4 ms of host time per check on 48 atoms (docs/log/performance.md, M3), as long as a CPU force
    call's tenth and a GPU's whole. In an orthorhombic periodic cell wider than twice the cutoff (every
    melt-quench cell) scipy's periodic k-d tree answers the same question in a fraction of that; any
    other cell (a sheared subcell) goes to neighbor_list."""
    cell = atoms.cell.array
    box = np.diag(cell).copy()
    orthorhombic = bool(np.all(atoms.pbc)) and not np.any(cell - np.diag(box)) and bool(np.all(box > 2 * cutoff))
    if not orthorhombic:
        return neighbor_list("ijd", atoms, cutoff, self_interaction=False)
    wrapped = np.mod(atoms.positions, box)
    wrapped[wrapped >= box] = 0.0  # np.mod can round up to the box length itself
    pairs = cKDTree(wrapped, boxsize=box).query_pairs(cutoff, output_type="ndarray")
    delta = wrapped[pairs[:, 1]] - wrapped[pairs[:, 0]]
    delta -= box * np.round(delta / box)
    return pairs[:, 0], pairs[:, 1], np.linalg.norm(delta, axis=1)


def fused_distance(atoms: Atoms, fusion_distance: float, scale: float = 1.0) -> float | None:
    """The closest distance of a pair nearer than its fusion threshold (fusion_thresholds), or None."""
    table = fusion_thresholds(atoms.numbers, fusion_distance, scale)
    present = np.unique(atoms.numbers)
    cutoff = float(table[np.ix_(present, present)].max())
    i, j, d = close_pairs(atoms, cutoff)
    too_close = d < table[atoms.numbers[i], atoms.numbers[j]]
    return float(d[too_close].min()) if np.any(too_close) else None


def invalid_reason(
    result: RelaxResult,
    initial_volume: float,
    fusion_distance: float,
    energy_floor_per_atom: float,
) -> str:
    """Why a relaxed subcell cannot be trusted, or "" when it can.

    Checks, in order: the relaxation raised; energy not finite; cell or positions not finite or
    the volume changed more than VOLUME_LIMIT-fold either way (blew up); two atoms fused; energy below the
    sanity floor (a hole in the potential); energy went up.
    """
    if result.error:
        return f"relaxation failed ({result.error})"
    if not (math.isfinite(result.initial_energy) and math.isfinite(result.final_energy)):
        return "energy is not finite"
    atoms = result.atoms
    if not (np.all(np.isfinite(atoms.positions)) and np.all(np.isfinite(atoms.cell.array))):
        return "blew up (non-finite coordinates)"
    volume = abs(atoms.get_volume())
    if not (initial_volume / VOLUME_LIMIT < volume < initial_volume * VOLUME_LIMIT):
        return f"blew up (volume {initial_volume:.1f} -> {volume:.1f} A^3)"
    fused = fused_distance(atoms, fusion_distance)
    if fused is not None:
        return f"atoms fused ({fused:.2f} A)"
    per_atom = result.final_energy / len(atoms)
    if per_atom < energy_floor_per_atom:
        return f"energy {per_atom:.2f} eV/atom below sanity floor {energy_floor_per_atom:.2f}"
    if result.final_energy > result.initial_energy + 1e-6:
        return "energy went up"
    return ""


def judged_relaxation(initial: Atoms, result: RelaxResult, fusion_distance: float, floor: float) -> Atoms:
    """The relaxed cell with the subcell's record and the verdict on whether to trust it."""
    reason = invalid_reason(result, initial.get_volume(), fusion_distance, floor)
    final = result.atoms.copy()
    final.calc = None
    final.info = dict(initial.info)
    final.info.setdefault("replica", 0)
    final.info.update(
        initial_energy=result.initial_energy,
        final_energy=result.final_energy,
        relax_steps=result.steps,
        converged=result.converged,
        valid=not reason,
        reason=reason or "ok",
    )
    return final
