"""Stage 2: the amorphous cells. Every replica's packed cell is melted, cooled and held cold
(amorph.melt_quench), and the run folder gets the cells, the MD log, each stage's temperatures against
its target, and the faults met on the way (md.dynamics.Guard).
"""

from __future__ import annotations

from dataclasses import asdict
from typing import TYPE_CHECKING

import pandas as pd
from ase import Atoms

from amorph.md.batched_md import batch_replicas, run_replicas
from amorph.md.dynamics import Guard, MDLogRow
from amorph.md.evaluators import make_evaluator
from amorph.md.potentials import LoadedPotential
from amorph.melt_quench import (
    STAGES,
    StartRelaxation,
    coupling_time_fs,
    melt_quench,
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


def run_melt_quench(run: Run, progress: ProgressSink) -> None:
    """Step 2: hold hot, ramp down, hold cold (NVT); several replicas share one batched force call per step."""
    starts = run.out.read_atoms(files.START)
    mq = run.settings.melt_quench
    progress.start(
        f"Melt-quench {mq.t_high:.0f} K -> {mq.t_low:.0f} K ({len(starts[0])} atoms"
        + (f", {len(starts)} replicas)" if len(starts) > 1 else ")"),
        sum(stage_steps(mq)) * len(starts),
    )
    rngs = replica_rngs(run.settings.seed, STREAM_MD, len(starts))

    guards = [Guard(run.settings.relax.fusion_distance) for _ in starts]

    def one(k: int, start: Atoms, potential: LoadedPotential) -> tuple[Atoms, list[MDLogRow], StartRelaxation]:
        return melt_quench(start, potential, mq, rngs[k], on_step=lambda _: progress.advance(), guard=guards[k])

    if run.settings.relax.engine == "batched":  # forces from the batched evaluator, replicas together on a GPU
        together = batch_replicas(len(starts), run.potential.device)
        outcomes = run_replicas(starts, run.potential, make_evaluator(run.potential), one, together)
    else:  # the plain ASE calculator, as one-at-a-time codes run it
        outcomes = [one(k, start, run.potential) for k, start in enumerate(starts)]
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
