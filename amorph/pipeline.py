"""The a2c pipeline: the steps of the method, top to bottom, as the stage table lists them.

0. known polymorphs (amorph.references)        -> known_polymorphs.json
1. start structure (amorph.start)              -> start.extxyz
2. melt-quench (amorph.amorphous)              -> amorphous.extxyz, melt_quench.csv, melt_quench.json, amorphous.cif
3. subcells (amorph.motifs.cutting)            -> subcells_initial.extxyz, subcell_census.json
4. crystallization (amorph.md.crystallize)     -> subcells_relaxed.extxyz, sampling.json
5. identification (amorph.matching.products)   -> subcells.csv, products/
   similarity to the amorphous solid (amorph.closeness) -> similarity.json, the relaxed cells
6. prediction (amorph.results.prediction)      -> report.json, polymorphs.csv, similarity.csv
   pictures (amorph.results.html)              -> report.html, figures/

What each stage reads and writes, and which settings it reads, is declared once, in amorph.stages;
this module only checks the input, writes config.json and runs the stages, skipping on resume those
whose outputs exist and whose inputs have not changed (stages.json).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from amorph.inputs import check_inputs
from amorph.matching.sources import gather
from amorph.md.potentials import load_potential
from amorph.md.sanity import check_on_reference
from amorph.progress import ProgressSink, SilentProgress
from amorph.results import rundir as files
from amorph.results.lock import RunLock
from amorph.results.rundir import RunDir
from amorph.run import Run, write_config
from amorph.settings import RunSettings
from amorph.stages import STAGES, StageRecords, adopt, declared_view, fingerprint, remove_outputs
from amorph.start import check_room
from amorph.threads import one_blas_thread


def prepare(settings: RunSettings | None, out: Path, resume: bool = False, restart: bool = False) -> Run:
    """Check everything that can be wrong with the input before a single file is written.

    resume: go on with the run in `out` (its own settings: given ones must match; None takes them);
    restart: remove the earlier run in `out` once every check has passed, and start over."""
    settings, formula = check_inputs(settings, out, resume, restart)  # again after the CLI's call: the API enters here
    one_blas_thread()  # a run starts here
    potential = load_potential(settings.potential, settings.device)
    potential.check_covers(formula.elements)
    gathered = None
    if not (resume and RunDir(out).has(files.KNOWN_POLYMORPHS)):
        gathered = gather(formula.reduced, settings.databases)  # an unreachable source fails here, before any file
        check_room(formula, settings.packing, gathered)
    run = Run(settings, formula, potential, RunDir(out), resume, gathered)
    if settings.potential_check:
        known = gathered if gathered is not None else run.references()  # resumed: stage 0's
        if known:  # none: the prototypes will be relaxed with this very potential
            run.notes.append(check_on_reference(potential, known, formula))
    if restart:
        run.out.clear()
    return run


def predict(
    settings: RunSettings | None,
    out: str | Path,
    progress: ProgressSink | bool | None = None,
    resume: bool = False,
    restart: bool = False,
) -> dict[str, Any]:
    """Run the whole pipeline into the folder `out` and return report.json's content (the Python API).
    `predict(None, out, resume=True)` continues the run in `out` with its own settings. `progress`:
    True draws the CLI's progress bars (rich, on stderr); a ProgressSink of your own gets every stage's
    start, advance, finish and notes; None or False runs silently."""
    run = prepare(settings, Path(out), resume, restart)
    if progress is True:
        from amorph.cli.render import RichProgress

        with RichProgress() as bars:
            return execute(run, bars)
    return execute(run, progress or SilentProgress())


def execute(run: Run, progress: ProgressSink) -> dict[str, Any]:
    """The six stages, each skipped when resuming and its output already exists; one process at a
    time writes into the run folder (results.lock)."""
    run.out.create()
    with RunLock(run.out.path) as lock:
        if not run.resume:
            write_config(run)  # first, so that a run stopped at any later moment can be resumed
        if lock.took_over is not None:
            progress.note(f"took over the lock of process {lock.took_over.pid} on {lock.took_over.host}, which is gone")
        return _stages(run, progress)


def _stages(run: Run, progress: ProgressSink) -> dict[str, Any]:
    """Every stage in the table's order; on resume, one whose outputs exist and whose fingerprint
    (amorph.stages.fingerprint) matches stages.json is skipped, any other runs again from scratch."""
    for note in [*run.potential.notes, *run.notes]:
        progress.note(note)
    records = adopt(run.out, run.settings) if run.resume else StageRecords(run.out)
    run.timings |= records.seconds()
    model = f"{run.potential.name} {run.potential.checksum}"
    for entry in STAGES:
        current = fingerprint(entry, run.settings, run.out, model)
        if run.resume and run.out.has(entry.done_marker) and records.up_to_date(entry, current):
            progress.note(f"resume: {entry.done_marker} exists, skipping {entry.name}")
            continue
        if records.begun_otherwise(entry, current):
            progress.note(f"{entry.name} runs again: its settings or inputs changed")
            remove_outputs(run.out, entry)
        records.start(entry, current)
        started = time.perf_counter()
        with declared_view(run, entry):
            entry.load()(run, progress)
        run._references = None  # stage 0 may have written them anew
        run.timings[entry.name] = round(time.perf_counter() - started, 3)
        records.finish(entry, run.timings[entry.name])
    return run.out.read_json(files.REPORT)
