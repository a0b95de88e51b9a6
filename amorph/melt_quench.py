"""Stage 2: the melt-quench protocol that turns the random cell into an amorphous solid.

Two choices make the MD follow its schedule (docs/method.md, "Melt-quench", has the numbers):

- The packed cell is relaxed (positions only, the cell fixed) before the MD. A random packing sits
  about 1 eV/atom above the crystal (TiO2 under CHGNet, Cu under EMT); all of that turns into heat
  in the first 10-20 fs, which is 5,000-17,000 K in a 2000 K hold, and no thermostat slow enough to
  leave the dynamics alone removes it within a short stage. Relaxed, the cell starts in a local
  minimum and the melt is made by the thermostat, at its target.
- The thermostat's time constant is set by the stage length: at most 1/100 of a stage (and never
  looser than --friction asks, nor under one time step). A thermostat lags a ramp by its time
  constant times the cooling rate, and the cooling liquid gives up configurational energy as heat
  that the thermostat must take out as fast: 100 fs on a 250 fs ramp from 2000 K left the quick
  preset's ramp and cold hold hundreds of K hot. At 1/50 of a stage a 48-atom Cu ramp still ran up
  to 13% hot; at 1/100, 2-8%. The paper's 5 ps stages get 50 fs; the quick preset's 250 fs, 2.5 fs.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from ase import Atoms
from ase.calculators.calculator import Calculator
from ase.optimize import FIRE

from amorph.errors import SimulationError
from amorph.md.dynamics import MAX_HALVINGS, ForceCall, Guard, MDFault, MDLogRow, calculator_forces, run_nvt_replicas
from amorph.md.potentials import LoadedPotential
from amorph.settings import MeltQuenchSettings

STAGES = ("hold at T_high", "ramp", "hold at T_low")
STAGE_OVER_TIME_CONSTANT = 100  # a stage lasts at least this many thermostat time constants
START_FMAX = 0.1  # eV/A: the packed cell's relaxation stops here (a local minimum; it need not be tight)
OFF_TARGET = 0.10  # a stage whose second half is further than this from its target is flagged
PEAK_OVER_MELT = 1.5  # no temperature of the run should exceed this times T_high


def stage_steps(settings: MeltQuenchSettings) -> tuple[int, int, int]:
    """MD steps of the hot hold, the ramp and the cold hold: the ramp takes ramp_factor x a hold's."""
    hold = settings.steps_per_stage
    ramp = max(1, round(hold * settings.ramp_factor)) if hold else 0
    return hold, ramp, hold


def temperature_schedule(settings: MeltQuenchSettings) -> np.ndarray:
    """Target temperature of every MD step: hold at T_high, linear ramp to T_low, hold at T_low."""
    hot, ramp, cold = stage_steps(settings)
    return np.concatenate([
        np.full(hot, settings.t_high),
        np.linspace(settings.t_high, settings.t_low, ramp, endpoint=False),
        np.full(cold, settings.t_low),
    ])


def coupling_time_fs(settings: MeltQuenchSettings) -> float:
    """The thermostat time constant the run uses: 1/--friction, tightened to 1/STAGE_OVER_TIME_CONSTANT of the
    shortest stage when that is shorter than that many of those, and never under one time step."""
    stage_fs = min(stage_steps(settings)) * settings.timestep
    return max(settings.timestep, min(1.0 / settings.friction, stage_fs / STAGE_OVER_TIME_CONSTANT))


def stage_of_step(step: int, steps: Sequence[int]) -> int:
    """Which stage (index into STAGES) the state after `step` MD steps belongs to, given each stage's
    steps (stage_steps); step 0 is the start."""
    done = max(0, step - 1)
    for index, end in enumerate(np.cumsum(steps)):
        if done < end:
            return index
    return len(STAGES) - 1


@dataclass(frozen=True)
class StartRelaxation:
    """The packed cell's relaxation before the MD, in eV per atom."""

    packed_energy: float
    relaxed_energy: float
    steps: int
    converged: bool


def relax_packing(atoms: Atoms, calculator: Calculator, max_steps: int) -> StartRelaxation:
    """Relax the atoms of the packed cell in place (the cell fixed: the run is NVT at the packing's
    density) to START_FMAX, at most max_steps FIRE steps; 0 steps leaves it as packed, as the paper."""
    atoms.calc = calculator
    packed = float(atoms.get_potential_energy()) / len(atoms)
    steps, converged = 0, max_steps == 0
    if max_steps > 0:
        opt = FIRE(atoms, logfile=None)
        converged = bool(opt.run(fmax=START_FMAX, steps=max_steps))
        steps = opt.nsteps
    return StartRelaxation(packed, float(atoms.get_potential_energy()) / len(atoms), steps, converged)


def melt_quench_replicas(
    starts: list[Atoms],
    settings: MeltQuenchSettings,
    calculators: list[Calculator],
    forces_of: ForceCall,
    rngs: list[np.random.Generator],
    on_step: Callable[[int, int], None] | None = None,
    guards: list[Guard] | None = None,
) -> list[tuple[Atoms, list[MDLogRow], StartRelaxation]]:
    """Relax each packed cell (a copy of it, through calculators[k]), then run the three-stage NVT
    protocol on all of them as one batch (forces_of: one call per step for every replica still
    running); return each replica's quenched cell, the log of every MD step and its start's
    relaxation. Faults recovered from are in guards[k].faults; one that is not ends in SimulationError
    naming the replica, stage, step and cause."""
    cells = [atoms.copy() for atoms in starts]
    starts_relaxed = []
    for k, (atoms, calculator) in enumerate(zip(cells, calculators, strict=True)):
        try:
            starts_relaxed.append(relax_packing(atoms, calculator, settings.start_relax_steps))
        except Exception as err:  # the potential cannot evaluate the packing: the run cannot start
            raise SimulationError(f"melt-quench could not relax the packed cell{_of_replica(k, starts, settings)}: "
                                  f"{type(err).__name__}: {err}") from None
        atoms.calc = None
    try:
        logs = run_nvt_replicas(
            cells,
            forces_of,
            temperature_schedule(settings),
            timestep_fs=settings.timestep,
            friction_per_fs=1.0 / coupling_time_fs(settings),
            rngs=rngs,
            log_every=1,
            on_step=on_step,
            guards=guards,
            kind=settings.thermostat,
        )
    except MDFault as fault:
        stage = STAGES[stage_of_step(fault.step, stage_steps(settings))]
        if fault.halvings == MAX_HALVINGS:
            tried = f", still after halving the {settings.timestep:g} fs time step {MAX_HALVINGS} times"
        elif fault.halvings:
            tried = f", on a state it had evaluated before (time step halved {fault.halvings} times by then)"
        else:
            tried = ", before any step"
        raise SimulationError(
            f"melt-quench failed{_of_replica(fault.replica, starts, settings)} at step {fault.step} of {sum(stage_steps(settings))} "
            f"({stage}): {fault.cause}{tried}"
        ) from None
    return list(zip(cells, logs, starts_relaxed, strict=True))


def _of_replica(k: int, starts: list[Atoms], settings: MeltQuenchSettings) -> str:
    """' (replica 2)' when the run has several, by the replica number the start cell carries."""
    several = settings.replicas > 1 or len(starts) > 1
    return f" (replica {starts[k].info.get('replica', k)})" if several else ""


def melt_quench(
    atoms: Atoms,
    potential: LoadedPotential,
    settings: MeltQuenchSettings,
    rng: np.random.Generator,
    on_step: Callable[[int], None] | None = None,
    guard: Guard | None = None,
) -> tuple[Atoms, list[MDLogRow], StartRelaxation]:
    """melt_quench_replicas for one cell, through the potential's ASE calculator."""
    calculator = potential.make_calculator()
    step_of = None if on_step is None else (lambda _k, step: on_step(step))
    return melt_quench_replicas([atoms], settings, [calculator], calculator_forces([calculator]), [rng], step_of,
                                [guard or Guard()])[0]


@dataclass(frozen=True)
class StageTemperature:
    """How closely one stage of one replica followed its target, from every step's temperature.

    The mean and spread are over the second half of the stage (the first half is where the cell
    catches up with a changed target); the peak is over the whole stage."""

    replica: int
    stage: str
    target: float  # K, the schedule's mean over the second half
    mean: float  # K
    spread: float  # K, standard deviation
    peak: float  # K
    off_target: bool  # the mean is more than OFF_TARGET from the target

    @property
    def deviation(self) -> float:
        return (self.mean - self.target) / self.target

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"deviation": round(self.deviation, 4)}


def stage_temperatures(log: Sequence[MDLogRow], steps: Sequence[int], replica: int = 0) -> list[StageTemperature]:
    """Per stage (`steps`: each stage's MD steps, stage_steps): the target and the reached mean, spread
    and peak (see StageTemperature)."""
    rows = [r for r in log if r.step > 0]
    out = []
    for index, name in enumerate(STAGES):
        mine = [r for r in rows if stage_of_step(r.step, steps) == index]
        if not mine:
            continue
        half = mine[len(mine) // 2 :]
        reached = np.array([r.temperature for r in half])
        target = float(np.mean([r.target_temperature for r in half]))
        mean = float(reached.mean())
        out.append(StageTemperature(
            replica, name, round(target, 1), round(mean, 1), round(float(reached.std()), 1),
            round(max(r.temperature for r in mine), 1), abs(mean - target) > OFF_TARGET * target,
        ))
    return out


def schedule_warnings(stages: Sequence[StageTemperature], t_high: float) -> list[str]:
    """One line per stage off its target, and one per replica whose peak passed PEAK_OVER_MELT x T_high."""
    lines = [f"replica {s.replica}, {s.stage}: reached {s.mean:.0f} K against {s.target:.0f} K "
             f"({100 * s.deviation:+.0f}%, more than {100 * OFF_TARGET:.0f}% off)" for s in stages if s.off_target]
    peaks: dict[int, float] = {}
    for s in stages:
        peaks[s.replica] = max(peaks.get(s.replica, 0.0), s.peak)
    lines += [f"replica {k}: peaked at {peak:.0f} K, above {PEAK_OVER_MELT:g}x the {t_high:.0f} K melt"
              for k, peak in peaks.items() if peak > PEAK_OVER_MELT * t_high]
    return lines
