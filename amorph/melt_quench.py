"""Stage 2: the melt-quench protocol that turns the random cell into an amorphous solid."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms

from amorph.md.dynamics import MDLogRow, run_nvt_schedule
from amorph.md.potentials import LoadedPotential
from amorph.settings import MeltQuenchSettings


def temperature_schedule(settings: MeltQuenchSettings) -> np.ndarray:
    """Target temperature of every MD step: hold at T_high, linear ramp to T_low, hold at T_low."""
    n = settings.steps_per_stage
    hold_hot = np.full(n, settings.t_high)
    ramp = np.linspace(settings.t_high, settings.t_low, n, endpoint=False) if n else np.empty(0)
    hold_cold = np.full(n, settings.t_low)
    return np.concatenate([hold_hot, ramp, hold_cold])


def melt_quench(
    atoms: Atoms,
    potential: LoadedPotential,
    settings: MeltQuenchSettings,
    rng: np.random.Generator,
    on_step: Callable[[int], None] | None = None,
) -> tuple[Atoms, list[MDLogRow]]:
    """Run the three-stage NVT protocol on a copy of `atoms`; return the quenched cell and the log."""
    atoms = atoms.copy()
    log = run_nvt_schedule(
        atoms,
        potential.make_calculator(),
        temperature_schedule(settings),
        timestep_fs=settings.timestep,
        friction_per_fs=settings.friction,
        rng=rng,
        on_step=on_step,
    )
    atoms.calc = None
    return atoms, log
