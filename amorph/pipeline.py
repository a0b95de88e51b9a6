"""The a2c pipeline: the six steps of the method, top to bottom.

0. known polymorphs (amorph.references) -> known_polymorphs.json
1. start structure (amorph.start)      -> start.extxyz
2. melt-quench (amorph.melt_quench)    -> melt_quench.csv, amorphous.cif, amorphous.extxyz
3. subcells (motifs)                   -> subcells_initial.extxyz
4. crystallization: relax each (md)    -> subcells_relaxed.extxyz
5. identification (matching)           -> subcells.csv, products/
6. prediction (matching.ranking)       -> polymorphs.csv, report.json

Each stage reads what the previous one wrote, so `--resume` can pick a stopped run up at the
first stage whose output is missing.
"""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import asdict, dataclass, field, replace
from itertools import zip_longest
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from amorph import __version__
from amorph.composition import Formula, parse_formula
from amorph.errors import AmorphError
from amorph.inputs import check_inputs
from amorph.matching.identify import Identity, identify
from amorph.matching.polymorph import Polymorph
from amorph.matching.ranking import Outcome, PolymorphTally, tally
from amorph.matching.rules import rule_probabilities
from amorph.matching.sources import gather
from amorph.matching.statistics import share_intervals, unseen_chance
from amorph.matching.symmetry import Symmetry, primitive_size
from amorph.md.batched_md import batch_replicas, replica_rngs, run_replicas
from amorph.md.dynamics import Guard, MDLogRow
from amorph.md.engine import Relaxer
from amorph.md.evaluators import make_evaluator
from amorph.md.potentials import LoadedPotential, load_potential
from amorph.md.relax import RelaxResult, invalid_reason
from amorph.md.sanity import check_potential
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
from amorph.motifs.subcells import Subcell, extract_subcells, size_limit
from amorph.progress import ProgressSink, SilentProgress
from amorph.references import collect
from amorph.results import provenance
from amorph.results import rundir as files
from amorph.results.checkpoint import CHECKPOINT, RelaxCheckpoint
from amorph.results.lock import RunLock
from amorph.results.product_cif import product_cif
from amorph.results.report import build_report, out_of_reach, similarity_predictions, similarity_rows
from amorph.results.rundir import RunDir
from amorph.results.subcells import COLUMNS as SUBCELL_COLUMNS
from amorph.results.subcells import SubcellRecord, read_records
from amorph.sampling import (
    ADAPTIVE_MIN_ROUND,
    ADAPTIVE_ROUNDS,
    NamedProducts,
    product_of,
    relax_until_separated,
    relax_while_inconclusive,
)
from amorph.settings import RunSettings
from amorph.start import OutOfRoom, check_room, out_of_room, reference_volume, start_structure
from amorph.suitability import suitability_warnings
from amorph.threads import one_blas_thread

# Independent random streams per stage, so resuming a stage reproduces it exactly.
STREAM_PACKING, STREAM_MD, STREAM_SUBCELLS, STREAM_BOOTSTRAP, STREAM_RULES, STREAM_SIMILARITY = 1, 2, 3, 4, 5, 6


@dataclass
class Run:
    """A validated run, ready to execute: nothing has been written yet."""

    settings: RunSettings
    formula: Formula
    potential: LoadedPotential
    out: RunDir
    resume: bool = False
    gathered: list[Polymorph] | None = None  # from the --db sources, before prototypes
    timings: dict[str, float] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)  # what prepare() found, shown when the run starts
    named: NamedProducts | None = None  # stage 4's named products, for stage 5 of the same process
    _references: list[Polymorph] | None = None

    def references(self) -> list[Polymorph]:
        """The known polymorphs of this run, as saved by stage 0."""
        if self._references is None:
            data = self.out.read_json(files.KNOWN_POLYMORPHS)
            self._references = [Polymorph.from_dict(d) for d in data["polymorphs"]]
        return self._references

    def n_max(self) -> int:
        """The most atoms in a subcell, as stage 0 set it from the known polymorphs (SizeLimit)."""
        limit = self.out.read_json(files.KNOWN_POLYMORPHS).get("subcell_size_limit")
        return int(limit["n_max"]) if limit else self.settings.subcells.n_max

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.settings.seed, stream])


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


def check_on_reference(potential: LoadedPotential, polymorphs: list[Polymorph], formula: Formula) -> str:
    """Refuse, before any file is written, a potential that gives nonsense on the formula's reference
    crystal: the ground state where a source marks one, else every known polymorph in turn until one
    passes (a user's file may hold a strained cell, which is no fault of the potential). Wrong model
    weights load without an error."""
    evaluate = make_evaluator(potential).evaluate

    def checked(reference: Polymorph) -> str:
        atoms = AseAtomsAdaptor.get_atoms(reference.structure)
        verdict = check_potential(potential.name, evaluate, atoms, f"{reference.name} {formula.display}")
        return f"potential check on {reference.name}: {verdict.energy_per_atom:.3f} eV/atom, largest force {verdict.max_force:.3f} eV/A"

    candidates = [p for p in polymorphs if p.ground_state] or polymorphs
    for reference in candidates[:-1]:
        try:
            return checked(reference)
        except AmorphError:
            continue
    return checked(candidates[-1])  # its failure is the error


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
    for note in [*run.potential.notes, *run.notes]:
        progress.note(note)
    stages = [collect_references, build_start_structure, run_melt_quench, cut_subcells, crystallize_subcells,
              identify_products, compare_with_polymorphs, rank_polymorphs, draw_report]
    assert [stage.__name__ for stage in stages] == list(files.STAGE_FILES)
    for stage in stages:
        output = files.STAGE_FILES[stage.__name__][0]  # its presence says the stage is done
        if run.resume and run.out.has(output):
            progress.note(f"resume: {output} exists, skipping {stage.__name__}")
            continue
        started = time.perf_counter()
        stage(run, progress)
        run.timings[stage.__name__] = round(time.perf_counter() - started, 3)
    report = run.out.read_json(files.REPORT)
    return report


def write_config(run: Run) -> None:
    """config.json: every setting, the seed, library versions and the potential actually used."""
    p = run.potential
    run.out.write_json(
        files.CONFIG,
        {
            "amorph_version": __version__,
            "command": provenance.command_line(),
            "started": provenance.utc_now(),
            "formula": run.formula.reduced,
            "settings": run.settings.to_dict(),
            "seed": run.settings.seed,
            "potential": {
                "requested": run.settings.potential,
                "used": p.name,
                "description": p.description,
                "version": p.version,
                "training_data": p.training,
                "weights_checksum": p.checksum,
                "device": p.device,
                "notes": p.notes,
            },
            "versions": provenance.library_versions(),
            "machine": provenance.machine(),
        },
    )


def collect_references(run: Run, progress: ProgressSink) -> None:
    """Step 0: the known polymorphs products are named against (relaxed prototypes when no source knows any)."""
    polymorphs = collect(
        run.formula, run.settings.databases, run.potential, run.settings.subcells.n_max, progress, run.gathered
    )
    origins = sorted({p.origin for p in polymorphs})
    progress.note(f"known polymorphs of {run.formula.display}: {len(polymorphs)} ({', '.join(origins) or 'none'})")
    for line in suitability_warnings(run.formula, polymorphs, run.potential.dispersion, run.settings.melt_quench.t_high):
        progress.note(f"warning: {line}")
    sc = run.settings.subcells
    n_atoms, edge, roomless = out_of_room(run.formula, run.settings.packing, polymorphs)
    # The size range is raised only for polymorphs the starting cell has room for: a subcell can become
    # no polymorph longer than the cell, so larger subcells for one would spend the budget on
    # relaxations that cannot reach it. When no polymorph has room, for all of them, as before.
    too_long = {r.name for r in roomless}
    fitting = [p for p in polymorphs if p.name not in too_long] or polymorphs
    limit = size_limit(sc.n_max, sc.fit_polymorphs, run.settings.packing.target_atoms, primitive_sizes(fitting).values())
    if limit.raised_from is not None:
        progress.note(
            f"subcells of up to {limit.n_max} atoms (not {limit.raised_from}), so that the primitive cell of every known "
            "polymorph the cell has room for can fit"
        )
    check_reachable(polymorphs, limit.n_max, run.formula.display, progress)
    if roomless:
        listed = ", ".join(f"{r.name} ({r.describe()})" for r in roomless)
        progress.note(f"subcells of this {n_atoms}-atom cell ({edge:.1f} A on a side) are too short to become: {listed}")
    run.out.write_json(
        files.KNOWN_POLYMORPHS,
        {
            "formula": run.formula.reduced,
            "sources": list(run.settings.databases),
            "subcell_size_limit": asdict(limit),
            "cell_room": {"edge": edge, "too_short_for": [asdict(r) for r in roomless]},
            "polymorphs": [p.to_dict() for p in polymorphs],
        },
    )


def invalid_kind(reason: str) -> str:
    """A reason without its numbers ("atoms fused (0.41 A)" -> "atoms fused"), to count them by kind."""
    return reason.split(" (")[0]


def check_reachable(polymorphs: list[Polymorph], n_max: int, formula: str, progress: ProgressSink) -> None:
    """Say, before any MD, which known polymorphs no subcell can become: a subcell of N atoms can only
    relax into a crystal whose primitive cell fits in it, so one of more than --n-max atoms is out of
    reach. When every known polymorph is, stop here (AmorphError) rather than after the melt-quench."""
    sizes = primitive_sizes(polymorphs)
    unreachable = sorted((size, name) for name, size in sizes.items() if size > n_max)
    if not unreachable:
        return
    listed = ", ".join(f"{name} ({size} atoms)" for size, name in unreachable)
    if len(unreachable) == len(sizes):
        raise AmorphError(
            f"no known polymorph of {formula} fits in subcells of at most {n_max} atoms (primitive cells: {listed}); "
            f"use --n-max {unreachable[0][0]} or more"
        )
    progress.note(f"subcells of at most {n_max} atoms cannot become: {listed}")


def build_start_structure(run: Run, progress: ProgressSink) -> None:
    """Step 1: random packing in a cubic cell at 1.15x the reference crystal volume (one per replica)."""
    replicas = run.settings.melt_quench.replicas
    progress.start("Packing random cell" + ("s" if replicas > 1 else ""), replicas)
    frames = []
    for k, rng in enumerate(replica_rngs(run.settings.seed, STREAM_PACKING, replicas)):
        atoms, reference = start_structure(run.formula, run.settings.packing, rng, run.references())
        atoms.info.update(replica=k, reference_volume_per_atom=reference.per_atom, reference_volume_source=reference.source)
        frames.append(atoms)
        progress.advance()
    run.out.write_atoms(files.START, frames, "extxyz")
    progress.finish()


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


def primitive_sizes(polymorphs: list[Polymorph]) -> dict[str, int]:
    """Each known polymorph's primitive-cell size (atoms), by name."""
    return {p.name: primitive_size(p.structure) for p in polymorphs}


def polymorph_primitive_sizes(polymorphs: list[Polymorph]) -> list[int] | None:
    """Primitive-cell sizes of the known polymorphs; None when there are none."""
    if not polymorphs:
        return None
    return sorted(set(primitive_sizes(polymorphs).values()))


def cut_subcells(run: Run, progress: ProgressSink) -> None:
    """Step 3: orthorhombic subcells on the fractional grid, filtered and sampled (pooled over replicas)."""
    replicas = run.out.read_atoms(files.AMORPHOUS_XYZ)
    sc = run.settings.subcells
    progress.start("Cutting subcells", len(replicas))
    sizes = None if sc.all_sizes else polymorph_primitive_sizes(run.references())
    n_max = run.n_max()
    budget = -(-sc.max_subcells // len(replicas))  # the budget is shared evenly between replicas
    reserve = 0 if sc.adaptive else -(-sc.more_if_inconclusive // len(replicas))  # so is the reserve
    frames: list[Atoms] = []
    spares: list[list[tuple[int, Subcell]]] = []  # per replica; after every replica's budget, so the budget's ids stay the same
    censuses = []
    rngs = replica_rngs(run.settings.seed, STREAM_SUBCELLS, len(replicas))
    for k, amorphous in enumerate(replicas):
        subcells, census = extract_subcells(
            amorphous,
            run.formula,
            d_frac=sc.d_frac,
            n_min=sc.n_min,
            n_max=n_max,
            max_subcells=budget,
            rng=rngs[k],
            sizes=sizes,
            any_composition=sc.any_composition,
            push_cut_contacts=sc.push_cut_contacts,
            reserve=reserve,
        )
        censuses.append(census)
        frames += [_subcell_frame(sub, len(frames) + n, k) for n, sub in enumerate(s for s in subcells if not s.reserve)]
        spares.append([(k, sub) for sub in subcells if sub.reserve])
        progress.advance()
    selected = len(frames)
    # the reserve taken in turns from each replica, so every round of it draws on all of them
    spare = [pair for turn in zip_longest(*spares) for pair in turn if pair is not None]
    frames += [_subcell_frame(sub, selected + n, k) for n, (k, sub) in enumerate(spare)]
    progress.finish()
    total = {key: sum(getattr(c, key) for c in censuses) for key in asdict(censuses[0])}
    progress.note(
        f"subcells: {total['boxes']} boxes, {total['allowed']} of allowed size and composition, "
        f"{total['distinct']} distinct, {selected} selected"
        + (f" and {len(spare)} in reserve, for an inconclusive answer" if spare else "")
        + (f" (sizes divisible by {', '.join(map(str, sizes))})" if sizes else "")
        + (f" from {len(replicas)} replicas" if len(replicas) > 1 else "")
    )
    pushes = [float(a.info["cut_push"]) for a in frames[:selected]]  # the budget's, as before the reserve
    pushed = {"subcells": sum(p > 0 for p in pushes), "largest_move": max(pushes, default=0.0)} if sc.push_cut_contacts else None
    if pushed is not None:
        progress.note(
            f"contacts made by the cut pushed apart in {pushed['subcells']} of {selected} subcells "
            f"(farthest move {pushed['largest_move']:.2f} A)"
        )
    if not frames:
        raise AmorphError(
            f"no subcell of {sc.n_min}-{n_max} atoms with the composition of {run.formula.display}; "
            "widen --n-min/--n-max or --d-frac"
        )
    run.out.write_atoms(files.SUBCELLS_INITIAL, frames, "extxyz")
    census_info = total | {
        "n_min": sc.n_min,
        "n_max": n_max,
        "allowed_sizes": sizes,
        "cut_contacts_pushed": pushed,
        "per_replica": [asdict(c) for c in censuses],
    }
    run.out.write_json(files.SUBCELL_CENSUS, census_info)


def _subcell_frame(sub: Subcell, subcell_id: int, replica: int) -> Atoms:
    """A cut subcell as subcells_initial.extxyz stores it: the cell, where it came from, whether in reserve."""
    atoms = sub.atoms.copy()
    atoms.info.update(
        subcell_id=subcell_id,
        replica=replica,
        lower=" ".join(f"{v:.4f}" for v in sub.lower),
        upper=" ".join(f"{v:.4f}" for v in sub.upper),
        source_indices=" ".join(map(str, sub.indices)),
        cut_push=sub.pushed,
        reserve=sub.reserve,
    )
    return atoms


def crystallize_subcells(run: Run, progress: ProgressSink) -> None:
    """Step 4: relax the subcells (atoms and cell); judge each result, keeping invalid ones.

    With --max-subcells auto the subcells are relaxed in rounds until the answer is clear
    (relax_until_separated); with a reserve (--more-if-inconclusive) the budget's subcells are
    relaxed, then reserve ones while the answer stays inconclusive (relax_while_inconclusive).
    sampling.json records every round of either.
    """
    subcells = run.out.read_atoms(files.SUBCELLS_INITIAL)
    replicas = run.out.read_atoms(files.AMORPHOUS_XYZ)
    rx, sc = run.settings.relax, run.settings.subcells
    budget = [s for s in subcells if not s.info.get("reserve", False)]
    reserve = [s for s in subcells if s.info.get("reserve", False)][: sc.more_if_inconclusive]  # the setting caps a reserve cut earlier
    progress.start(f"Relaxing {len(budget)} subcells" + (" (stops when the answer is clear)" if sc.adaptive else ""), len(budget))
    round_size = len(budget) if not sc.adaptive else max(ADAPTIVE_MIN_ROUND, len(budget) // ADAPTIVE_ROUNDS)
    checkpoint = RelaxCheckpoint(run.out)
    if checkpoint.resumed:
        progress.note(f"resume: {checkpoint.resumed} subcells were relaxed before the stop ({CHECKPOINT})")
    sampling = None
    with Relaxer(run.potential, rx.engine, rx.fmax, rx.max_steps, expected_cells=round_size) as relaxer:
        lowest = min(e.energy / len(a) for a, e in zip(replicas, relaxer.evaluator.evaluate(replicas)))
        floor = lowest - rx.energy_drop_limit

        def relax(cells: list[Atoms]) -> list[Atoms]:
            """Relax and judge the cells not in the checkpoint; every finished one goes into it."""
            todo = [c for c in cells if int(c.info["subcell_id"]) not in checkpoint.done]
            for _ in range(len(cells) - len(todo)):
                progress.advance()

            def finished(index: int, result: RelaxResult) -> None:
                checkpoint.add(_judged(todo[index], result, rx.fusion_distance, floor))
                progress.advance()

            relaxer.relax(todo, on_done=finished)
            return [checkpoint.done[int(c.info["subcell_id"])] for c in cells]

        if sc.adaptive:
            relaxed, sampling = relax_until_separated(budget, relax, round_size, run.references(), run.rng(STREAM_BOOTSTRAP), progress)
        elif reserve:
            relaxed, sampling, run.named = relax_while_inconclusive(
                budget, reserve, relax, run.references(), run.settings.rule, lambda: run.rng(STREAM_RULES), progress
            )
        else:
            relaxed = relax(budget)
    progress.finish()
    if sampling is not None:
        run.out.write_json(files.SAMPLING, sampling)
    run.out.write_atoms(files.SUBCELLS_RELAXED, relaxed, "extxyz")
    checkpoint.remove()


def _judged(initial: Atoms, result: RelaxResult, fusion_distance: float, floor: float) -> Atoms:
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


def name_products(
    relaxed: list[Atoms], references: list[Polymorph], progress: ProgressSink | None = None, named: NamedProducts | None = None
) -> tuple[dict[int, Identity], dict[int, Symmetry]]:
    """Space group and name of every valid relaxed subcell, keyed by subcell id; taken from `named`
    (stage 4's) when it holds exactly these products."""
    if named is not None and set(named.products) == {a.info["subcell_id"] for a in relaxed if a.info["valid"]}:
        if progress is not None:
            progress.advance(len(relaxed))
        return named.identities(), {i: p.symmetry for i, p in named.products.items()}
    products, symmetries = [], {}
    for atoms in relaxed:
        if atoms.info["valid"]:
            product = product_of(atoms)
            symmetries[product.subcell_id] = product.symmetry
            products.append(product)
        if progress is not None:
            progress.advance()
    return identify(products, references), symmetries


def identify_products(run: Run, progress: ProgressSink) -> None:
    """Step 5: space group of every valid product and its match among the known polymorphs."""
    relaxed = run.out.read_atoms(files.SUBCELLS_RELAXED)
    progress.start("Identifying products", len(relaxed) + 1)
    labels, symmetries = name_products(relaxed, run.references(), progress, run.named)
    progress.advance()
    progress.finish()

    records = [
        SubcellRecord.from_relaxed(atoms, symmetries.get(atoms.info["subcell_id"]), labels.get(atoms.info["subcell_id"]))
        for atoms in relaxed
    ]
    run.out.write_csv(files.SUBCELLS_CSV, pd.DataFrame([r.to_row() for r in records], columns=list(SUBCELL_COLUMNS)))
    # one CIF per distinct product: its lowest-energy member (a layered polymorph's stacking variants
    # apart), symmetrized to its own space group (results.product_cif)
    best: dict[str, tuple[float, Atoms, Identity]] = {}
    for atoms in relaxed:
        label = labels.get(atoms.info["subcell_id"])
        if label is None:
            continue
        name = label.label + (files.STACKING_VARIANT_SUFFIX if label.stacking_variant else "")
        e = atoms.info["final_energy"] / len(atoms)
        if name not in best or e < best[name][0]:
            best[name] = (e, atoms, label)
    for name, (_, atoms, label) in best.items():
        matched = (f"the known polymorph {label.label} ({label.spacegroup_symbol}, {label.spacegroup_number})"
                   + (" in another stacking of its layers" if label.stacking_variant else "") if label.known
                   else f"no known polymorph (structure type {label.structure_type or '?'}; closest known: {label.closest_known or '?'})")
        run.out.write_text(f"{files.PRODUCTS}/{name}.cif", product_cif(atoms, name, symmetries.get(atoms.info["subcell_id"]), matched))


def outcomes_of(valid: list[SubcellRecord], references: list[Polymorph]) -> list[Outcome]:
    """What each valid subcell of subcells.csv became, as the rules take it (matching.rules)."""
    polymorphs = {p.name: p for p in references}
    outcomes = []
    for r in valid:
        if r.known_polymorph:
            pm = polymorphs[r.match]
            identity = Identity(r.match, True, pm.spacegroup_symbol, pm.spacegroup_number, stacking_variant=r.stacking_variant)
        else:
            identity = Identity(
                r.match, False, r.spacegroup_symbol, r.spacegroup_number, r.structure_type, r.closest_known, r.fingerprint_distance
            )
        outcomes.append(Outcome(r.id, identity, r.final_energy_per_atom, parse_formula(r.formula).reduced, r.replica))
    return outcomes


def roomless_of(run: Run) -> tuple[float, list[OutOfRoom]]:
    """Stage 0's cell room (the starting cell's edge, the polymorphs too long for it), worked out again
    for a run folder older than the record."""
    room = run.out.read_json(files.KNOWN_POLYMORPHS).get("cell_room")
    if room is None:
        _, edge, roomless = out_of_room(run.formula, run.settings.packing, run.references())
        return edge, roomless
    return room["edge"], [OutOfRoom(**r) for r in room["too_short_for"]]


def unformed_energies(run: Run, rows: list[PolymorphTally], reach: dict[str, str], relaxed: dict[str, float]) -> dict[str, float]:
    """Energy per atom, relaxed under the run's potential (`relaxed`, from similarity.json), of each
    database polymorph (not a prototype, not an ordered model of a disordered phase) that the subcells
    could become and none did. An energy rule's answer is only as good as the sampling: one of these
    lower than the answer would have been named had a subcell found it (matching.rules.evidence_gaps)."""
    formed = {r.name for r in rows if r.known and r.count > 0}
    return {p.name: relaxed[p.name] for p in run.references()
            if p.name not in reach and p.name not in formed and p.origin != "prototypes" and not p.approximant and p.name in relaxed}


def compare_with_polymorphs(run: Run, progress: ProgressSink) -> None:
    """Between steps 5 and 6: how close each replica's amorphous cell is to each known polymorph, and
    where each polymorph lies against the amorphous solid's energy (amorph.closeness)."""
    from amorph.closeness import compare_with_amorphous  # dscribe's start-up, only when the stage runs

    cells = run.out.read_atoms(files.AMORPHOUS_XYZ)
    content, amorphous, crystals = compare_with_amorphous(run.formula.reduced, cells, run.references(), run.potential,
                                                          run.settings.relax.fmax, progress)
    unconverged = sum(not a.info["converged"] for a in amorphous)
    if unconverged:
        progress.note(f"amorphous limit: {unconverged} of {len(amorphous)} amorphous cells not converged in "
                      f"{content['amorphous']['relax_steps_cap']} steps; their energy is an upper bound")
    run.out.write_atoms(files.AMORPHOUS_RELAXED, amorphous, "extxyz")
    run.out.write_atoms(files.POLYMORPHS_RELAXED, crystals, "extxyz")
    run.out.write_json(files.SIMILARITY, content)


def with_similarity(table: pd.DataFrame, closeness: dict[str, Any]) -> pd.DataFrame:
    """polymorphs.csv: each product's row, a known polymorph's with its similarity to the amorphous solid and
    its energy against it (similarity.csv has every known polymorph, formed or not)."""
    if table.empty:  # no valid subcell: no product rows
        return table
    known = {p["name"]: p for p in closeness["polymorphs"]}
    for column, key in (("similarity", "similarity"), ("similarity_se", "similarity_se"),
                        ("energy_above_amorphous_mev_per_atom", "energy_above_amorphous_mev_per_atom")):
        table[column] = [known[name][key] if is_known and name in known else None for name, is_known in zip(table["name"], table["known"])]
    return table


def own_spacegroup(row: PolymorphTally, lowest: SubcellRecord) -> str:
    """The space group of a known polymorph's lowest-energy member (the one products/ holds) where it
    differs from the matched reference's: a product named bcc by its structure can be a distorted bcc
    whose own symmetry, at the tolerance spglib found, is lower. Empty where they agree, and for unknowns."""
    if not row.known or lowest.spacegroup_number == row.spacegroup_number:
        return ""
    return f"{lowest.spacegroup_symbol} ({lowest.spacegroup_number})"


def rank_polymorphs(run: Run, progress: ProgressSink) -> None:
    """Step 6: count each polymorph; the most frequent known one nucleates first."""
    records = read_records(run.out.read_rows(files.SUBCELLS_CSV), str(run.out.file(files.SUBCELLS_CSV)))
    valid = [r for r in records if r.valid]
    outcomes = outcomes_of(valid, run.references())
    intervals = share_intervals([r.match for r in valid], [r.replica for r in valid], run.rng(STREAM_BOOTSTRAP))
    by_id = {r.id: r for r in valid}
    rows = [replace(t, share_ci_low=intervals[t.name][0], share_ci_high=intervals[t.name][1],
                    own_spacegroup=own_spacegroup(t, by_id[t.lowest_energy_subcell])) for t in tally(outcomes)]
    probabilities = rule_probabilities(outcomes, [r.replica for r in valid], run.rng(STREAM_RULES))
    relax_seconds = run.timings.get("crystallize_subcells")  # known when stage 4 ran in this process
    config = run.out.read_json(files.CONFIG)
    edge, roomless = roomless_of(run)
    sizes = primitive_sizes(run.references())
    reach = out_of_reach(sizes, {r.n_atoms for r in records}, edge, roomless)
    # the database's polymorphs (not prototypes, and not ordered models of a disordered phase, whose cell is
    # the model's choice) that no subcell could become: no answer is conclusive while one of them could not
    # form. Each is named with the setting that would give it room, so the report says what would settle it.
    room_from = {r.name: f"--atoms {r.atoms}" for r in roomless}
    could_not_form = [f"{p.name} (room from {room_from.get(p.name, f'--n-max {sizes[p.name]}')})"
                      for p in run.references() if p.name in reach and p.origin != "prototypes" and not p.approximant]
    closeness = run.out.read_json(files.SIMILARITY)
    run.out.write_csv(files.POLYMORPHS_CSV, with_similarity(pd.DataFrame([t.to_dict() for t in rows]), closeness))
    unformed = unformed_energies(run, rows, reach, {p["name"]: p["energy_per_atom"] for p in closeness["polymorphs"]})
    report = build_report(
        formula=run.formula.reduced,
        rule=run.settings.rule,
        rows=rows,
        probabilities=probabilities,
        seconds_per_subcell=relax_seconds / len(records) if relax_seconds and records else None,
        n_subcells=len(records),
        n_valid=len(valid),
        invalid=dict(Counter(invalid_kind(r.reason) for r in records if not r.valid).most_common()),
        replicas=run.settings.melt_quench.replicas,
        sampling=run.out.read_json(files.SAMPLING) if run.out.has(files.SAMPLING) else {"mode": "fixed", "relaxed": len(records)},
        potential=config["potential"]["used"],
        preset=run.settings.preset,
        seed=run.settings.seed,
        reference_volume=asdict(reference_volume(run.formula, run.references())),
        sources=list(run.settings.databases),
        known_names=[p.name for p in run.references()],
        out_of_reach=reach,
        timings=run.timings,
        could_not_form=could_not_form,
        unseen=unseen_chance([t.count for t in rows]),
        unformed=unformed,
        melt_quench=run.out.read_json(files.MELT_QUENCH_SUMMARY) if run.out.has(files.MELT_QUENCH_SUMMARY) else None,
        similarity=closeness,
    )
    report["formula_display"] = run.formula.display  # as the user wrote it (MoSi2, not pymatgen's Si2Mo), for messages
    # what config.json records of the potential, so that report.json alone says which model answered
    report["potential_details"] = {k: config["potential"].get(k) for k in ("description", "version", "training_data", "weights_checksum", "device")}
    # the similarity rules last: a conclusive one needs the run's own rule to agree, conclusively
    report["predictions"] |= similarity_predictions(closeness, rows, outcomes, run.settings.melt_quench.replicas, run.references(),
                                                    run.rng(STREAM_SIMILARITY), subcell_answer=report["prediction"])
    run.out.write_csv(files.SIMILARITY_CSV, pd.DataFrame(similarity_rows(report)))
    run.out.write_json(files.REPORT, report)


def draw_report(run: Run, progress: ProgressSink) -> None:
    """After step 6: the pictures (figures/) and report.html, from the files the stages wrote."""
    from amorph.results.html import run_page

    progress.start("Drawing figures and report.html", 1)
    run_page(run.out)
    progress.advance()
    progress.finish()
