"""NVT molecular dynamics under a temperature schedule (one target temperature per step)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary


@dataclass(frozen=True)
class MDLogRow:
    """One line of the melt-quench log."""

    step: int
    time_fs: float
    target_temperature: float  # K
    temperature: float  # K, instantaneous kinetic temperature
    potential_energy: float  # eV per atom


def run_nvt_schedule(
    atoms: Atoms,
    calculator: Calculator,
    temperatures: Sequence[float] | np.ndarray,
    timestep_fs: float,
    friction_per_fs: float,
    rng: np.random.Generator,
    log_every: int = 10,
    on_step: Callable[[int], None] | None = None,
) -> list[MDLogRow]:
    """Run len(temperatures) Langevin NVT steps, retargeting the thermostat every step.

    Langevin (ASE) is used because its target temperature can be changed between steps
    through a public method, which a linear ramp needs. Velocities start from a
    Maxwell-Boltzmann distribution at the first temperature, drawn from `rng`.
    """
    atoms.calc = calculator
    n_steps = len(temperatures)
    log: list[MDLogRow] = []
    if n_steps == 0:
        return log
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperatures[0], rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())  # no drift of the whole cell; ASE's recommended form
    dyn = Langevin(
        atoms,
        timestep=timestep_fs * units.fs,
        temperature_K=temperatures[0],
        friction=friction_per_fs / units.fs,
        fixcm=False,
        rng=rng,
    )

    def after_step() -> None:
        step = dyn.nsteps
        if step % log_every == 0 or step == n_steps:
            log.append(
                MDLogRow(
                    step=step,
                    time_fs=step * timestep_fs,
                    target_temperature=float(temperatures[min(step, n_steps - 1)]),
                    temperature=float(atoms.get_temperature()),
                    potential_energy=float(atoms.get_potential_energy()) / len(atoms),
                )
            )
        if step < n_steps:
            dyn.set_temperature(temperature_K=float(temperatures[step]))
        if on_step is not None and step > 0:
            on_step(step)

    dyn.attach(after_step, interval=1)
    dyn.run(n_steps)
    atoms.set_constraint()
    return log
