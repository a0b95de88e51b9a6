"""Stage 2: the amorphous cells. Every replica's packed cell is melted, cooled and held cold
(amorph.melt_quench), and the run folder gets the cells, the MD log, each stage's temperatures against
its target, and the faults met on the way (md.dynamics.Guard).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd
from ase.calculators.calculator import Calculator

from amorph.md.batched_md import EvaluatorCalculator, evaluator_forces, replica_groups
from amorph.md.dynamics import ForceCall, Guard, calculator_forces
from amorph.md.evaluators import make_evaluator, new_keys
from amorph.melt_quench import (
    STAGES,
    coupling_time_fs,
    melt_quench_replicas,
    schedule_warnings,
    stage_of_step,
    stage_steps,
    stage_temperatures,
)
from amorph.progress import ProgressSink
from amorph.results import rundir as files
from amorph.run import STREAM_MD, replica_rngs

if TYPE_CHECKING:
    from amorph.run import Run


# A batch of n replicas' forces: each one's calculator for its start's relaxation, the MD's force call,
# and what to call when the batch is done.
ReplicaForces = tuple[list[Calculator], ForceCall, Callable[[], None]]


def _force_source(run: Run) -> Callable[[int], ReplicaForces]:
    """The batched engine evaluates through one batch evaluator (one call per MD step for a batch);
    the sequential one through the potential's plain ASE calculator, as one-at-a-time codes run it."""
    if run.settings.relax.engine == "batched":
        evaluator = make_evaluator(run.potential)

        def batched(n: int) -> ReplicaForces:
            keys = new_keys(n)  # one name per replica: its neighbour list is reused from step to step
            return [EvaluatorCalculator(evaluator, key) for key in keys], evaluator_forces(evaluator, keys), lambda: evaluator.forget(keys)

        return batched

    def sequential(n: int) -> ReplicaForces:
        calculators = [run.potential.make_calculator() for _ in range(n)]
        return calculators, calculator_forces(calculators), lambda: None

    return sequential


def run_melt_quench(run: Run, progress: ProgressSink) -> None:
    """Step 2: hold hot, ramp down, hold cold (NVT); the replicas are stepped as one batch on a GPU,
    one after another on a CPU (md.batched_md.replica_groups)."""
    starts = run.out.read_atoms(files.START)
    mq = run.settings.melt_quench
    progress.start(
        f"Melt-quench {mq.t_high:.0f} K -> {mq.t_low:.0f} K ({len(starts[0])} atoms"
        + (f", {len(starts)} replicas)" if len(starts) > 1 else ")"),
        sum(stage_steps(mq)) * len(starts),
    )
    rngs = replica_rngs(run.settings.seed, STREAM_MD, len(starts))
    guards = [Guard(run.settings.relax.fusion_distance) for _ in starts]
    outcomes = []
    forces_for = _force_source(run)
    for group in replica_groups(len(starts), run.potential.device):
        calculators, forces_of, done = forces_for(len(group))
        try:
            outcomes += melt_quench_replicas([starts[k] for k in group], mq, calculators, forces_of, [rngs[k] for k in group],
                                             on_step=lambda _k, _step: progress.advance(), guards=[guards[k] for k in group])
        finally:
            done()
    progress.finish()
    rows, frames, stages, relaxations = [], [], [], []
    for k, (amorphous, log, relaxed) in enumerate(outcomes):
        rows += [{"replica": k, "stage": STAGES[stage_of_step(row.step, stage_steps(mq))]} | asdict(row) for row in log]
        stages += stage_temperatures(log, stage_steps(mq), replica=k)
        relaxations.append({"replica": k} | asdict(relaxed))
        amorphous.info["replica"] = k
        frames.append(amorphous)
    faults = [{"replica": k} | asdict(f) for k, guard in enumerate(guards) for f in guard.faults]
    for f in faults:
        progress.note(f"melt-quench, replica {f['replica']}: {f['cause']} at step {f['step']}; went back and on at {f['timestep_fs']:g} fs")
    warnings = schedule_warnings(stages, mq.t_high)
    for line in warnings:
        progress.note(f"melt-quench off its schedule: {line}")
    if faults:
        run.out.write_json(files.MELT_QUENCH_FAULTS, faults)
    run.out.write_csv(files.MELT_QUENCH_LOG, pd.DataFrame(rows))
    run.out.write_json(files.MELT_QUENCH_SUMMARY, {
        "thermostat": mq.thermostat,
        "time_constant_fs": coupling_time_fs(mq),
        "start_relaxation": relaxations,
        "stages": [s.to_dict() for s in stages],
        "warnings": warnings,
    })
    run.out.write_atoms(files.AMORPHOUS_CIF, frames, "cif")
    run.out.write_atoms(files.AMORPHOUS_XYZ, frames, "extxyz")
