"""NVT molecular dynamics of a batch of replicas under a temperature schedule (one target
temperature per step), guarded. The replicas are one state stepped by one integrator
(md.integrator), with one force call per step for all of them.

Every step is checked for the faults that make a trajectory meaningless: a non-finite energy or
force, a temperature runaway, two atoms fused. On a fault the run goes back to its last good state
(kept every SNAPSHOT_EVERY steps) and goes on with half the time step, at most MAX_HALVINGS times;
then MDFault names the replica, the step and the cause. A replica's fault sends only that
replica back; the others go on. The cell is fixed (NVT), so its volume cannot run away.

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
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.constraints import FixCom
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from amorph.md.integrator import Coupling, NVTIntegrator, ReplicaBatch
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
    """A melt-quench replica that kept failing after MAX_HALVINGS halvings of its time step, or whose
    potential failed on a state no time step changes (its start, or a good state gone back to);
    halvings: how often its time step had been halved by then."""

    def __init__(self, step: int, cause: str, replica: int = 0, halvings: int = MAX_HALVINGS):
        super().__init__(f"replica {replica}, step {step}: {cause}")
        self.step, self.cause, self.replica, self.halvings = step, cause, replica, halvings


@dataclass
class FaultRecord:
    """One fault met and recovered from: where, why, and the time step taken from then on."""

    step: int
    cause: str
    timestep_fs: float


# A batch's force call: the cells of the replicas named (indices into the batch), in that order ->
# each one's potential energy (eV) and forces (eV/A). ase.Atoms carry positions, cell and species only.
ForceCall = Callable[[list[int], list[Atoms]], list[tuple[float, np.ndarray]]]


def calculator_forces(calculators: Sequence[Calculator]) -> ForceCall:
    """A force call through ASE calculators, one cell after another, replica k through calculators[k]
    on an Atoms of its own (a calculator's neighbour list is then updated as under an ASE integrator;
    shared between cells it would be rebuilt in another order, and the forces differ in the last bit)."""
    kept: dict[int, Atoms] = {}

    def call(rows: list[int], cells: list[Atoms]) -> list[tuple[float, np.ndarray]]:
        out = []
        for k, cell in zip(rows, cells, strict=True):
            if k not in kept:
                kept[k] = cell.copy()
            atoms = kept[k]
            atoms.set_positions(cell.positions)
            atoms.calc = calculators[k]
            out.append((float(atoms.get_potential_energy()), atoms.get_forces().copy()))
        return out

    return call


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
    runaway_steps: int = 250  # scheduled steps hot in a row that make a runaway (run_nvt_replicas sets it)
    instant_factor: float = RUNAWAY_INSTANT  # x the highest target: a runaway at once

    def check(
        self, energy: float, forces: np.ndarray, temperature: float, atoms: Atoms, target: float, hottest: float,
        streaks: tuple[int, int],
    ) -> tuple[str | None, tuple[int, int]]:
        """The fault after this step, if any, and the updated streaks (see _Snapshot.streaks)."""
        if not (np.isfinite(energy) and np.all(np.isfinite(forces))):
            return "non-finite energy or forces", streaks
        if not np.isfinite(temperature) or temperature > self.instant_factor * hottest:
            return f"temperature runaway ({temperature:.0f} K, highest target {hottest:.0f} K)", streaks
        fused = fused_distance(atoms, self.fusion_distance)
        streaks = (streaks[0] + 1 if temperature > RUNAWAY_FACTOR * target else 0, streaks[1] + 1 if fused is not None else 0)
        if streaks[0] > self.runaway_steps:
            return f"temperature runaway (above {RUNAWAY_FACTOR:g}x the {target:.0f} K target for {streaks[0]} steps)", streaks
        if fused is not None and (streaks[1] > FUSED_STEPS or fused_distance(atoms, self.fusion_distance, FUSED_INSTANT) is not None):
            return f"atoms fused ({fused:.2f} A)", streaks
        return None, streaks


@dataclass
class _Replica:
    """One replica's place in the schedule and what its guard keeps."""

    k: int
    rng: np.random.Generator
    guard: Guard
    log: list[MDLogRow] = field(default_factory=list)
    step: int = 0
    halvings: int = 0
    streaks: tuple[int, int] = (0, 0)
    reported: int = 0
    good: _Snapshot | None = None


def run_nvt_replicas(
    replicas: list[Atoms],
    forces_of: ForceCall,
    temperatures: Sequence[float] | np.ndarray,
    timestep_fs: float,
    friction_per_fs: float,
    rngs: list[np.random.Generator],
    log_every: int = 10,
    kind: Thermostat = "langevin",
    on_step: Callable[[int, int], None] | None = None,
    guards: list[Guard] | None = None,
) -> list[list[MDLogRow]]:
    """Run len(temperatures) NVT steps on every replica (in place) under the `kind` thermostat (see
    md.integrator), retargeting it every step, as a linear ramp needs; one force call per step for
    all replicas still running. Velocities start from a Maxwell-Boltzmann distribution at the first
    temperature, drawn from each replica's rng; the centre of mass stays fixed. After a fault (see
    the module docstring) each of that replica's scheduled steps is taken as 2, 4 or 8 steps of the
    smaller time step, so the schedule keeps its length in time; guards[k].faults records what
    happened. on_step(k, step) is called once per scheduled step a replica completes. Returns each
    replica's log."""
    check_choice("--thermostat", kind, Thermostat)
    guards = guards or [Guard() for _ in replicas]
    runaway_steps = max(RUNAWAY_MIN_STEPS, math.ceil(RUNAWAY_TIME_CONSTANTS / (friction_per_fs * timestep_fs)))
    n_steps = len(temperatures)
    if n_steps == 0:
        return [[] for _ in replicas]
    for atoms, rng in zip(replicas, rngs, strict=True):
        MaxwellBoltzmannDistribution(atoms, temperature_K=temperatures[0], rng=rng)
        Stationary(atoms)
        atoms.set_constraint(FixCom())  # what get_number_of_degrees_of_freedom and ase.io report for the run
    state = ReplicaBatch.of(replicas)
    integrator = NVTIntegrator(state, rngs)
    team = [_Replica(k, rng, guard) for k, (rng, guard) in enumerate(zip(rngs, guards, strict=True))]
    for guard in guards:
        guard.runaway_steps = runaway_steps
    hottest = float(np.max(temperatures))

    def evaluate(rows: list[int]) -> dict[int, str]:
        """Forces at the current positions of these replicas; the ones the potential failed on, with why."""
        failed: dict[int, str] = {}
        try:
            results = forces_of(rows, [state.atoms(k) for k in rows])
        except RECOVERABLE as err:
            if len(rows) == 1:
                return {rows[0]: f"the potential failed ({type(err).__name__}: {err})"}
            for k in rows:  # find the replica it failed on
                failed |= evaluate([k])
            return failed
        for k, (energy, forces) in zip(rows, results, strict=True):
            state.set_forces(k, energy, forces)
        return failed

    def step_each(half: Callable[[int, Coupling], None], rows: list[int], couplings: dict[int, Coupling]) -> dict[int, str]:
        """One half of a step for each replica, one at a time, so that arithmetic that fails on one
        replica's state (a zero kinetic energy, an overflow) is that replica's fault alone."""
        failed = {}
        for k in rows:
            try:
                half(k, couplings[k])
            except RECOVERABLE as err:
                failed[k] = f"the integrator failed ({type(err).__name__}: {err})"
        return failed

    def record(r: _Replica) -> None:
        if r.step % log_every == 0 or r.step == n_steps:
            r.log.append(MDLogRow(step=r.step, time_fs=r.step * timestep_fs,
                                  target_temperature=float(temperatures[min(r.step, n_steps - 1)]),
                                  temperature=state.temperature(r.k), potential_energy=float(state.energies[r.k]) / state.numbers.shape[1]))

    def snapshot(r: _Replica) -> _Snapshot:
        return _Snapshot(r.step, state.positions[r.k].copy(), state.momenta[r.k].copy(), r.rng.bit_generator.state, len(r.log), r.streaks)

    def go_back(r: _Replica, fault: str) -> None:
        """Back to the replica's last good state, with half its time step; MDFault after MAX_HALVINGS."""
        if r.halvings == MAX_HALVINGS:
            finish()
            raise MDFault(r.step + 1, fault, r.k)
        r.halvings += 1
        r.guard.faults.append(FaultRecord(r.step + 1, fault, timestep_fs / 2**r.halvings))
        good = r.good
        if good is None:
            raise RuntimeError("a replica went back before its first snapshot")
        state.positions[r.k], state.momenta[r.k] = good.positions, good.momenta
        r.rng.bit_generator.state = good.rng_state
        del r.log[good.log_length :]
        r.step, r.streaks = good.step, good.streaks
        again = evaluate([r.k])
        if again:  # the potential fails on a state it evaluated before: nothing a time step can cure
            finish()
            raise MDFault(r.step, again[r.k], r.k, r.halvings)

    def finish() -> None:
        for k, atoms in enumerate(replicas):
            atoms.set_positions(state.positions[k], apply_constraint=False)
            atoms.set_momenta(state.momenta[k], apply_constraint=False)
            atoms.set_constraint()

    first = evaluate(list(range(len(replicas))))
    if first:
        finish()
        k, why = next(iter(first.items()))
        raise MDFault(0, why, k, 0)
    for r in team:
        record(r)
        r.good = snapshot(r)
    running = list(team)
    while running:
        couplings = {r.k: Coupling(kind, timestep_fs / 2**r.halvings, friction_per_fs, float(temperatures[r.step])) for r in running}
        faults: dict[int, str] = {}
        for sub in range(max(2**r.halvings for r in running)):
            rows = [r.k for r in running if sub < 2**r.halvings and r.k not in faults]
            if not rows:
                break
            faults |= step_each(integrator.before_forces, rows, couplings)
            moving = [k for k in rows if k not in faults]
            faults |= evaluate(moving)
            faults |= step_each(integrator.after_forces, [k for k in moving if k not in faults], couplings)
        for r in running:
            fault = faults.get(r.k)
            if fault is None:
                target = couplings[r.k].temperature_K
                try:
                    fault, r.streaks = r.guard.check(float(state.energies[r.k]), state.forces[r.k], state.temperature(r.k),
                                                     state.atoms(r.k), target, hottest, r.streaks)
                except RECOVERABLE as err:  # a state so broken that the check itself fails (non-finite positions)
                    fault = f"the state could not be checked ({type(err).__name__}: {err})"
            if fault is not None:
                go_back(r, fault)
                continue
            r.step += 1
            record(r)
            if r.step % SNAPSHOT_EVERY == 0:
                r.good = snapshot(r)
            if on_step is not None and r.step > r.reported:  # a replayed step is not progress
                r.reported = r.step
                on_step(r.k, r.step)
        running = [r for r in running if r.step < n_steps]
    finish()
    return [r.log for r in team]


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
    """run_nvt_replicas for one cell (in place) through one ASE calculator."""
    step_of = None if on_step is None else (lambda _k, step: on_step(step))
    return run_nvt_replicas([atoms], calculator_forces([calculator]), temperatures, timestep_fs, friction_per_fs, [rng],
                            log_every, kind, step_of, [guard or Guard()])[0]
