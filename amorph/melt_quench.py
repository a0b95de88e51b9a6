"""Stage 2: the melt-quench protocol that turns the random cell into an amorphous solid."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from ase import Atoms

from amorph.errors import AmorphError
from amorph.md.dynamics import MAX_HALVINGS, Guard, MDFault, MDLogRow, run_nvt_schedule
from amorph.md.potentials import LoadedPotential
from amorph.settings import MeltQuenchSettings


def temperature_schedule(settings: MeltQuenchSettings) -> np.ndarray:
    """Target temperature of every MD step: hold at T_high, linear ramp to T_low, hold at T_low."""
    n = settings.steps_per_stage
    hold_hot = np.full(n, settings.t_high)
    ramp = np.linspace(settings.t_high, settings.t_low, n, endpoint=False) if n else np.empty(0)
    hold_cold = np.full(n, settings.t_low)
    return np.concatenate([hold_hot, ramp, hold_cold])


STAGES = ("hold at T_high", "ramp", "hold at T_low")


def melt_quench(
    atoms: Atoms,
    potential: LoadedPotential,
    settings: MeltQuenchSettings,
    rng: np.random.Generator,
    on_step: Callable[[int], None] | None = None,
    guard: Guard | None = None,
) -> tuple[Atoms, list[MDLogRow]]:
    """Run the three-stage NVT protocol on a copy of `atoms`; return the quenched cell and the log.
    Faults recovered from are in guard.faults; one that is not ends in AmorphError naming the stage,
    step and cause."""
    atoms = atoms.copy()
    try:
        log = run_nvt_schedule(
            atoms,
            potential.make_calculator(),
            temperature_schedule(settings),
            timestep_fs=settings.timestep,
            friction_per_fs=settings.friction,
            rng=rng,
            on_step=on_step,
            guard=guard,
            kind=settings.thermostat,
        )
    except MDFault as fault:
        stage = STAGES[min(2, (fault.step - 1) // max(1, settings.steps_per_stage))]
        raise AmorphError(
            f"melt-quench failed at step {fault.step} of {3 * settings.steps_per_stage} ({stage}): {fault.cause}, "
            f"still after halving the {settings.timestep:g} fs time step {MAX_HALVINGS} times"
        ) from None
    atoms.calc = None
    return atoms, log
