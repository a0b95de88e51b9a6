"""NVT molecular dynamics under a temperature schedule (one target temperature per step), guarded.

Every step is checked for the faults that make a trajectory meaningless: a non-finite energy or
force, a temperature runaway, two atoms fused. On a fault the run goes back to its last good state
(kept every SNAPSHOT_EVERY steps) and goes on with half the time step, at most MAX_HALVINGS times;
then MDFault names the step and the cause. The cell is fixed (NVT), so its volume cannot run away.

Fused atoms are not any pair that comes within the fusion distance: in the same first steps, at
up to 17,000 K, CHGNet TiO2 brought a Ti-O pair to 1.30 A (the threshold: 0.6 x the sum of covalent
radii, 1.36 A) for a moment, and halving the step changes nothing about that. Atoms are fused when
a pair stays within it for more than FUSED_STEPS steps in a row (a collision lasts a few fs; fused
atoms stay), or comes within half of it at any step.

A runaway is heat the thermostat cannot remove (a hole in the potential): above RUNAWAY_FACTOR x the
current target for more than RUNAWAY_TIME_CONSTANTS thermostat time constants in a row (at least
RUNAWAY_MIN_STEPS steps), or above RUNAWAY_INSTANT x the schedule's highest target at any step. These
limits hold because the melt-quench relaxes the packed cell first (amorph.melt_quench): before it did,
the packing's strain energy heated CHGNet TiO2 to 24,000 K at step 10 and the guard had to let 30x the
target pass. A run that asks for an unrelaxed start (--start-relax-steps 0) can trip them: that heat
is what this guard is for.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from ase import Atoms, units
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from amorph.md.relax import fused_distance
from amorph.settings import DEFAULT_FUSION_DISTANCE, Thermostat, check_choice


@dataclass(frozen=True)
class MDLogRow:
    """One line of the melt-quench log."""

    step: int
    time_fs: float
    target_temperature: float  # K
    temperature: float  # K, instantaneous kinetic temperature
    potential_energy: float  # eV per atom


SNAPSHOT_EVERY = 20  # steps between saved good states
MAX_HALVINGS = 3  # time step halved at most this often (dt/8) before the run gives up
RUNAWAY_FACTOR = 2.0  # x the target temperature ...
RUNAWAY_TIME_CONSTANTS = 5.0  # ... for this many thermostat time constants in a row
RUNAWAY_MIN_STEPS = 10  # ... and never fewer steps than this
RUNAWAY_INSTANT = 3.0  # x the schedule's highest target: a runaway at once
FUSED_STEPS = 25  # steps a pair may stay within the fusion distance (50 fs at 2 fs)
FUSED_INSTANT = 0.5  # x the fusion distance: fused at once


# What a potential raises on a geometry it cannot handle (torch and the graph builders: RuntimeError,
# ValueError, or IndexError from a neighbour list on a degenerate cell; numpy under np.errstate:
# FloatingPointError), and so what a shorter time step may cure. Anything else (TypeError, KeyError,
# AttributeError, ...) is a bug in amorph and is not retried.
RECOVERABLE: tuple[type[Exception], ...] = (RuntimeError, ValueError, IndexError, ArithmeticError)


class MDFault(Exception):
    """A melt-quench that kept failing after MAX_HALVINGS halvings of its time step."""

    def __init__(self, step: int, cause: str):
        super().__init__(f"step {step}: {cause}")
        self.step, self.cause = step, cause


@dataclass
class FaultRecord:
    """One fault met and recovered from: where, why, and the time step taken from then on."""

    step: int
    cause: str
    timestep_fs: float


@dataclass
class _Snapshot:
    step: int
    positions: np.ndarray
    momenta: np.ndarray
    rng_state: Mapping[str, Any]
    log_length: int
    streaks: tuple[int, int]  # steps in a row: hot (above RUNAWAY_FACTOR x target), with a pair fused


@dataclass
class Guard:
    """The per-step checks; fusion_distance as for relaxed subcells (md.relax.fusion_thresholds)."""

    fusion_distance: float = DEFAULT_FUSION_DISTANCE
    faults: list[FaultRecord] = field(default_factory=list)
    runaway_steps: int = 250  # scheduled steps hot in a row that make a runaway (run_nvt_schedule sets it)
    instant_factor: float = RUNAWAY_INSTANT  # x the highest target: a runaway at once

    def check(
        self, atoms: Atoms, forces: np.ndarray, target: float, hottest: float, streaks: tuple[int, int]
    ) -> tuple[str | None, tuple[int, int]]:
        """The fault after this step, if any, and the updated streaks (see _Snapshot.streaks)."""
        energy = atoms.get_potential_energy()
        if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
            return "non-finite energy or forces", streaks
        temperature = float(atoms.get_temperature())
        if not np.isfinite(temperature) or temperature > self.instant_factor * hottest:
            return f"temperature runaway ({temperature:.0f} K, highest target {hottest:.0f} K)", streaks
        fused = fused_distance(atoms, self.fusion_distance)
        streaks = (streaks[0] + 1 if temperature > RUNAWAY_FACTOR * target else 0, streaks[1] + 1 if fused is not None else 0)
        if streaks[0] > self.runaway_steps:
            return f"temperature runaway (above {RUNAWAY_FACTOR:g}x the {target:.0f} K target for {streaks[0]} steps)", streaks
        if fused is not None and (streaks[1] > FUSED_STEPS or fused_distance(atoms, self.fusion_distance, FUSED_INSTANT) is not None):
            return f"atoms fused ({fused:.2f} A)", streaks
        return None, streaks


class RampedBussi(Bussi):
    """ASE's Bussi thermostat with the setter Langevin has and the ramp needs: a target temperature
    that changes every step. It sets again the two public attributes ASE's __init__ derives from
    temperature_K. A shorter time step after a fault gets a new integrator (run_nvt_schedule), so
    nothing private of ASE's is touched."""

    def set_temperature(self, temperature_K: float) -> None:
        self.temp = temperature_K * units.kB
        self.target_kinetic_energy = 0.5 * self.temp * self.ndof


def thermostat(atoms: Atoms, kind: Thermostat, timestep_fs: float, temperature_K: float, friction_per_fs: float,
               rng: np.random.Generator) -> Langevin | RampedBussi:
    """The NVT integrator: Langevin with this friction, or Bussi with time constant 1/friction.

    Langevin damps every atom's velocity and kicks it with noise, which slows diffusion in the melt as
    well as holding the temperature; Bussi rescales the whole cell's kinetic energy towards a canonical
    draw, so the atoms move as Newton's equations say, as under the a2c reference code's Nose-Hoover
    chain (tau 80 fs). Bussi rather than ASE's Nose-Hoover chain because its target can be changed
    every step without reaching into the chain's private state (RampedBussi). The same number couples
    Bussi half as tightly: Langevin's friction relaxes the kinetic energy over 1/(2 friction), 50 fs
    at the default, Bussi's over 1/friction, 100 fs.
    """
    if kind == "bussi":
        return RampedBussi(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K,
                           taut=units.fs / friction_per_fs, rng=rng)
    check_choice("--thermostat", kind, Thermostat)
    return Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=temperature_K,
                    friction=friction_per_fs / units.fs, fixcm=False, rng=rng)


def run_nvt_schedule(
    atoms: Atoms,
    calculator: Calculator,
    temperatures: Sequence[float] | np.ndarray,
    timestep_fs: float,
    friction_per_fs: float,
    rng: np.random.Generator,
    log_every: int = 10,
    kind: Thermostat = "langevin",
    on_step: Callable[[int], None] | None = None,
    guard: Guard | None = None,
) -> list[MDLogRow]:
    """Run len(temperatures) NVT steps under the `kind` thermostat (see `thermostat`), retargeting it
    every step, as a linear ramp needs. Velocities start from a Maxwell-Boltzmann distribution
    at the first temperature, drawn from `rng`. After a fault (see the module docstring) each
    scheduled step is taken as 2, 4 or 8 steps of the smaller time step, so the schedule keeps its
    length in time; guard.faults records what happened.
    """
    guard = guard or Guard()
    guard.runaway_steps = max(RUNAWAY_MIN_STEPS, math.ceil(RUNAWAY_TIME_CONSTANTS / (friction_per_fs * timestep_fs)))
    atoms.calc = calculator
    n_steps = len(temperatures)
    log: list[MDLogRow] = []
    if n_steps == 0:
        return log
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperatures[0], rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())  # no drift of the whole cell; ASE's recommended form
    dyn = thermostat(atoms, kind, timestep_fs, float(temperatures[0]), friction_per_fs, rng)

    def snapshot(step: int, streaks: tuple[int, int]) -> _Snapshot:
        return _Snapshot(step, atoms.get_positions(), atoms.get_momenta(), rng.bit_generator.state, len(log), streaks)

    def record(step: int) -> None:
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

    halvings, step, reported = 0, 0, 0
    hottest = float(np.max(temperatures))
    streaks = (0, 0)
    forces = atoms.get_forces(md=True)
    record(0)
    good = snapshot(0, streaks)
    while step < n_steps:
        target = float(temperatures[step])
        dyn.set_temperature(temperature_K=target)
        try:
            for _ in range(2**halvings):
                forces = dyn.step(forces)
            fault, streaks = guard.check(atoms, forces, target, hottest, streaks)
        except RECOVERABLE as err:  # the potential raised on a bad geometry: a fault like any other
            fault = f"the potential failed ({type(err).__name__}: {err})"
        if fault is not None:
            if halvings == MAX_HALVINGS:
                atoms.set_constraint()
                raise MDFault(step + 1, fault)
            halvings += 1
            guard.faults.append(FaultRecord(step + 1, fault, timestep_fs / 2**halvings))
            atoms.set_positions(good.positions, apply_constraint=False)
            atoms.set_momenta(good.momenta, apply_constraint=False)
            rng.bit_generator.state = good.rng_state
            del log[good.log_length :]
            step, streaks = good.step, good.streaks
            dyn = thermostat(atoms, kind, timestep_fs / 2**halvings, target, friction_per_fs, rng)  # no draw from rng
            forces = atoms.get_forces(md=True)
            continue
        step += 1
        record(step)
        if step % SNAPSHOT_EVERY == 0:
            good = snapshot(step, streaks)
        if on_step is not None and step > reported:  # a replayed step is not progress
            reported = step
            on_step(step)
    atoms.set_constraint()
    return log
