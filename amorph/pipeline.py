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
from contextlib import nullcontext
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from amorph import __version__
from amorph.composition import Formula, parse_formula
from amorph.errors import AmorphError
from amorph.melt_quench import melt_quench
from amorph.progress import ProgressSink, SilentProgress
from amorph.settings import RunSettings, validate
from amorph.start import reference_volume, start_structure
from amorph.references import collect
from amorph.matching.polymorph import Polymorph
from amorph.matching.sources import gather
from amorph.matching.identify import Clusters, Identity, Product, identify
from amorph.matching.ranking import Outcome, PolymorphTally, lowest_energy_product, predicted_polymorph, tally
from amorph.matching.statistics import separation, share_intervals
from amorph.matching.symmetry import Symmetry, find_symmetry, primitive_size
from amorph.md.potentials import LoadedPotential, load_potential
from amorph.md.batched_md import batch_replicas, replica_rngs, run_replicas
from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import BatchEvaluator, make_evaluator
from amorph.md.parallel_relax import WorkerPool, relax_in_processes, worker_count
from amorph.md.relax import RelaxResult, invalid_reason
from amorph.motifs.subcells import extract_subcells
from amorph.results import provenance
from amorph.results import rundir as files
from amorph.results.rundir import RunDir

# Independent random streams per stage, so resuming a stage reproduces it exactly.
STREAM_PACKING, STREAM_MD, STREAM_SUBCELLS, STREAM_BOOTSTRAP = 1, 2, 3, 4
# --max-subcells auto: relax in about this many rounds, of at least this many subcells each
ADAPTIVE_ROUNDS, ADAPTIVE_MIN_ROUND = 20, 16


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
    _references: list[Polymorph] | None = None

    def references(self) -> list[Polymorph]:
        """The known polymorphs of this run, as saved by stage 0."""
        if self._references is None:
            data = self.out.read_json(files.KNOWN_POLYMORPHS)
            self._references = [Polymorph.from_dict(d) for d in data["polymorphs"]]
        return self._references

    def rng(self, stream: int) -> np.random.Generator:
        return np.random.default_rng([self.settings.seed, stream])


def prepare(settings: RunSettings, out: Path, resume: bool = False) -> Run:
    """Check everything that can be wrong with the input before a single file is written."""
    if resume:
        RunDir.check_writable(out, resume=True)
        settings = RunSettings.from_dict(RunDir(out).read_json(files.CONFIG)["settings"])
    formula = parse_formula(settings.formula)
    validate(settings)
    RunDir.check_writable(out, resume)
    potential = load_potential(settings.potential, settings.device)
    potential.check_covers(formula.elements)
    gathered = None
    if not (resume and RunDir(out).has(files.KNOWN_POLYMORPHS)):
        gathered = gather(formula.reduced, settings.databases)  # an unreachable source fails here, before any file
    return Run(settings, formula, potential, RunDir(out), resume, gathered)


def predict(settings: RunSettings, out: Path, progress: ProgressSink | None = None, resume: bool = False) -> dict[str, Any]:
    """Run the whole pipeline and return report.json's content."""
    return execute(prepare(settings, out, resume), progress or SilentProgress())


def execute(run: Run, progress: ProgressSink) -> dict[str, Any]:
    """The six stages, each skipped when resuming and its output already exists."""
    run.out.create()
    if not run.resume:
        write_config(run)
    for note in run.potential.notes:
        progress.note(note)
    stages = [
        (files.KNOWN_POLYMORPHS, collect_references),
        (files.START, build_start_structure),
        (files.AMORPHOUS_XYZ, run_melt_quench),
        (files.SUBCELLS_INITIAL, cut_subcells),
        (files.SUBCELLS_RELAXED, crystallize_subcells),
        (files.SUBCELLS_CSV, identify_products),
        (files.REPORT, rank_polymorphs),
    ]
    for output, stage in stages:
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
    progress.note(f"known polymorphs of {run.formula.reduced}: {len(polymorphs)} ({', '.join(origins) or 'none'})")
    run.out.write_json(
        files.KNOWN_POLYMORPHS,
        {"formula": run.formula.reduced, "sources": list(run.settings.databases), "polymorphs": [p.to_dict() for p in polymorphs]},
    )


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
        3 * mq.steps_per_stage * len(starts),
    )
    rngs = replica_rngs(run.settings.seed, STREAM_MD, len(starts))

    def one(k: int, start: Atoms, potential: LoadedPotential) -> tuple[Atoms, list]:
        return melt_quench(start, potential, mq, rngs[k], on_step=lambda _: progress.advance())

    if run.settings.relax.engine == "batched":  # forces from the batched evaluator, replicas together on a GPU
        together = batch_replicas(len(starts), run.potential.device)
        outcomes = run_replicas(starts, run.potential, make_evaluator(run.potential), one, together)
    else:  # the plain ASE calculator, as one-at-a-time codes run it
        outcomes = [one(k, start, run.potential) for k, start in enumerate(starts)]
    progress.finish()
    rows, frames = [], []
    for k, (amorphous, log) in enumerate(outcomes):  # type: ignore[misc]
        rows += [{"replica": k} | asdict(row) for row in log]
        amorphous.info["replica"] = k
        frames.append(amorphous)
    run.out.write_csv(files.MELT_QUENCH_LOG, pd.DataFrame(rows))
    run.out.write_atoms(files.AMORPHOUS_CIF, frames, "cif")
    run.out.write_atoms(files.AMORPHOUS_XYZ, frames, "extxyz")


def polymorph_primitive_sizes(polymorphs: list[Polymorph]) -> list[int] | None:
    """Primitive-cell sizes of the known polymorphs; None when there are none."""
    if not polymorphs:
        return None
    return sorted({primitive_size(p.structure) for p in polymorphs})


def cut_subcells(run: Run, progress: ProgressSink) -> None:
    """Step 3: orthorhombic subcells on the fractional grid, filtered and sampled (pooled over replicas)."""
    replicas = run.out.read_atoms(files.AMORPHOUS_XYZ)
    sc = run.settings.subcells
    progress.start("Cutting subcells", len(replicas))
    sizes = None if sc.all_sizes else polymorph_primitive_sizes(run.references())
    budget = -(-sc.max_subcells // len(replicas))  # the budget is shared evenly between replicas
    frames, censuses = [], []
    rngs = replica_rngs(run.settings.seed, STREAM_SUBCELLS, len(replicas))
    for k, amorphous in enumerate(replicas):
        subcells, census = extract_subcells(
            amorphous,
            run.formula,
            d_frac=sc.d_frac,
            n_min=sc.n_min,
            n_max=sc.n_max,
            max_subcells=budget,
            rng=rngs[k],
            sizes=sizes,
            any_composition=sc.any_composition,
            push_cut_contacts=sc.push_cut_contacts,
        )
        censuses.append(census)
        for sub in subcells:
            atoms = sub.atoms.copy()
            atoms.info.update(
                subcell_id=len(frames),
                replica=k,
                lower=" ".join(f"{v:.4f}" for v in sub.lower),
                upper=" ".join(f"{v:.4f}" for v in sub.upper),
                source_indices=" ".join(map(str, sub.indices)),
                cut_push=sub.pushed,
            )
            frames.append(atoms)
        progress.advance()
    progress.finish()
    total = {key: sum(getattr(c, key) for c in censuses) for key in asdict(censuses[0])}
    progress.note(
        f"subcells: {total['boxes']} boxes, {total['allowed']} of allowed size and composition, "
        f"{total['distinct']} distinct, {len(frames)} selected"
        + (f" (sizes divisible by {', '.join(map(str, sizes))})" if sizes else "")
        + (f" from {len(replicas)} replicas" if len(replicas) > 1 else "")
    )
    pushes = [float(a.info["cut_push"]) for a in frames]
    pushed = {"subcells": sum(p > 0 for p in pushes), "largest_move": max(pushes, default=0.0)} if sc.push_cut_contacts else None
    if pushed is not None:
        progress.note(
            f"contacts made by the cut pushed apart in {pushed['subcells']} of {len(frames)} subcells "
            f"(farthest move {pushed['largest_move']:.2f} A)"
        )
    if not frames:
        raise AmorphError(
            f"no subcell of {sc.n_min}-{sc.n_max} atoms with the composition of {run.formula.reduced}; "
            "widen --n-min/--n-max or --d-frac"
        )
    run.out.write_atoms(files.SUBCELLS_INITIAL, frames, "extxyz")
    census_info = total | {"allowed_sizes": sizes, "cut_contacts_pushed": pushed, "per_replica": [asdict(c) for c in censuses]}
    run.out.write_json("subcell_census.json", census_info)


def crystallize_subcells(run: Run, progress: ProgressSink) -> None:
    """Step 4: relax the subcells (atoms and cell); judge each result, keeping invalid ones.

    With --max-subcells auto the subcells are relaxed in rounds (in their sampled order) and relaxing
    stops once the leading known polymorph is ahead of the runner-up at 95% confidence, or when the
    subcells run out; sampling.json records every round.
    """
    subcells = run.out.read_atoms(files.SUBCELLS_INITIAL)
    replicas = run.out.read_atoms(files.AMORPHOUS_XYZ)
    rx, sc = run.settings.relax, run.settings.subcells
    evaluator = make_evaluator(run.potential, batched=rx.engine == "batched")
    lowest = min(e.energy / len(a) for a, e in zip(replicas, evaluator.evaluate(replicas)))
    floor = lowest - rx.energy_drop_limit
    progress.start(f"Relaxing {len(subcells)} subcells" + (" (stops when the answer is clear)" if sc.adaptive else ""), len(subcells))
    round_size = len(subcells) if not sc.adaptive else max(ADAPTIVE_MIN_ROUND, len(subcells) // ADAPTIVE_ROUNDS)
    relaxed_frames: list[Atoms] = []
    rounds = []
    rng = run.rng(STREAM_BOOTSTRAP)
    clusters = Clusters(run.references())  # grows round by round: only new products are compared
    known = {p.name for p in run.references()}
    workers = worker_count(round_size, run.potential.device, run.potential.name) if rx.engine == "batched" else 1
    # one set of worker processes for every round
    with WorkerPool(workers) if workers > 1 else nullcontext() as pool:
        for start in range(0, len(subcells), round_size):
            batch = subcells[start : start + round_size]
            results = _relax(run, batch, evaluator, progress, pool)
            judged = [_judged(initial, result, rx.fusion_distance, floor) for initial, result in zip(batch, results)]
            relaxed_frames += judged
            if not sc.adaptive:
                continue
            clusters.add([_product(f) for f in judged if f.info["valid"]])
            names = clusters.known_names()
            valid = [f for f in relaxed_frames if f.info["valid"]]
            sep = separation([names[f.info["subcell_id"]] or "unknown" for f in valid], known, [f.info["replica"] for f in valid], rng)
            rounds.append({"relaxed": len(relaxed_frames), "valid": len(valid)} | asdict(sep) | {"separated": sep.separated})
            if sep.separated and len(relaxed_frames) >= 2 * round_size:
                progress.note(
                    f"stopping after {len(relaxed_frames)} subcells: {sep.leader} leads {sep.runner_up or 'every other known polymorph'} "
                    f"by {100 * sep.difference:.0f}% (95% interval {100 * sep.low:.0f} to {100 * sep.high:.0f}%)"
                )
                break
    progress.finish()
    if sc.adaptive:
        stopped = "separated" if rounds and rounds[-1]["separated"] and len(relaxed_frames) < len(subcells) else "budget"
        run.out.write_json(
            files.SAMPLING,
            {"mode": "auto", "budget": len(subcells), "relaxed": len(relaxed_frames), "stopped": stopped, "rounds": rounds},
        )
    run.out.write_atoms(files.SUBCELLS_RELAXED, relaxed_frames, "extxyz")


def _relax(
    run: Run, cells: list[Atoms], evaluator: BatchEvaluator, progress: ProgressSink, pool: WorkerPool | None
) -> list[RelaxResult]:
    """The batched engine in this process, or (CPU, torch model, enough cells) in the pool's worker processes."""
    rx = run.settings.relax
    if pool is not None and worker_count(len(cells), run.potential.device, run.potential.name) >= pool.workers:
        return relax_in_processes(
            cells, run.potential.name, pool.workers, True, rx.fmax, rx.max_steps, on_progress=progress.advance, pool=pool
        )
    return relax_many(cells, evaluator, rx.fmax, rx.max_steps, on_done=lambda _index, _result: progress.advance())


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
    relaxed: list[Atoms], references: list[Polymorph], progress: ProgressSink | None = None
) -> tuple[dict[int, Identity], dict[int, Symmetry]]:
    """Space group and name of every valid relaxed subcell, keyed by subcell id."""
    products, symmetries = [], {}
    for atoms in relaxed:
        if atoms.info["valid"]:
            product = _product(atoms)
            symmetries[product.subcell_id] = product.symmetry
            products.append(product)
        if progress is not None:
            progress.advance()
    return identify(products, references), symmetries


def _product(atoms: Atoms) -> Product:
    """A valid relaxed subcell as matching.identify takes it (structure, energy per atom, space group)."""
    structure = AseAtomsAdaptor.get_structure(atoms)
    return Product(atoms.info["subcell_id"], structure, atoms.info["final_energy"] / len(atoms), find_symmetry(structure))


def identify_products(run: Run, progress: ProgressSink) -> None:
    """Step 5: space group of every valid product and its match among the known polymorphs."""
    relaxed = run.out.read_atoms(files.SUBCELLS_RELAXED)
    progress.start("Identifying products", len(relaxed) + 1)
    labels, symmetries = name_products(relaxed, run.references(), progress)
    progress.advance()
    progress.finish()

    rows = []
    for atoms in relaxed:
        info, n = atoms.info, len(atoms)
        sid = info["subcell_id"]
        sym, label = symmetries.get(sid), labels.get(sid)
        rows.append(
            {
                "id": sid,
                "replica": int(info.get("replica", 0)),
                "n_atoms": n,
                "formula": atoms.get_chemical_formula(mode="metal"),
                "lower": info["lower"],
                "upper": info["upper"],
                "cut_push": float(info.get("cut_push", 0.0)),
                "initial_energy_per_atom": info["initial_energy"] / n,
                "final_energy_per_atom": info["final_energy"] / n,
                "relax_steps": info["relax_steps"],
                "converged": info["converged"],
                "valid": info["valid"],
                "reason": info["reason"],
                "spacegroup_symbol": sym.symbol if sym else "",
                "spacegroup_number": sym.number if sym else 0,
                "symprec": sym.symprec if sym else float("nan"),
                "match": label.label if label else "",
                "known_polymorph": bool(label and label.known),
                "structure_type": label.structure_type if label else "",
                "closest_known": label.closest_known if label else "",
                "fingerprint_distance": label.closest_distance if label else float("nan"),
            }
        )
    run.out.write_csv(files.SUBCELLS_CSV, pd.DataFrame(rows))
    # one CIF per distinct product: its lowest-energy member
    best: dict[str, tuple[float, Atoms]] = {}
    for atoms in relaxed:
        label = labels.get(atoms.info["subcell_id"])
        if label is None:
            continue
        e = atoms.info["final_energy"] / len(atoms)
        if label.label not in best or e < best[label.label][0]:
            best[label.label] = (e, atoms)
    for name, (_, atoms) in best.items():
        run.out.write_atoms(f"{files.PRODUCTS}/{name}.cif", atoms, "cif")


def rank_polymorphs(run: Run, progress: ProgressSink) -> None:
    """Step 6: count each polymorph; the most frequent known one nucleates first."""
    table = run.out.read_csv(files.SUBCELLS_CSV)
    valid = table[table["valid"].astype(bool)]
    polymorphs = {p.name: p for p in run.references()}
    outcomes = []
    for r in valid.itertuples():
        if r.known_polymorph:
            pm = polymorphs[r.match]
            identity = Identity(r.match, True, pm.spacegroup_symbol, pm.spacegroup_number)
        else:
            identity = Identity(
                r.match,
                False,
                r.spacegroup_symbol,
                int(r.spacegroup_number),
                _text(r.structure_type),
                _text(r.closest_known),
                float(r.fingerprint_distance),
            )
        outcomes.append(Outcome(int(r.id), identity, float(r.final_energy_per_atom), parse_formula(r.formula).reduced))
    intervals = share_intervals(list(valid["match"]), list(valid["replica"]), run.rng(STREAM_BOOTSTRAP))
    rows = [replace(r, share_ci_low=intervals[r.name][0], share_ci_high=intervals[r.name][1]) for r in tally(outcomes)]
    run.out.write_csv(files.POLYMORPHS_CSV, pd.DataFrame([r.to_dict() for r in rows]))
    config = run.out.read_json(files.CONFIG)
    report = build_report(run, rows, n_subcells=len(table), n_valid=len(valid), config=config)
    run.out.write_json(files.REPORT, report)


def _text(value: object) -> str:
    """A CSV text cell read back by pandas: empty cells come back as NaN."""
    return "" if isinstance(value, float) else str(value)


def build_report(run: Run, rows: list[PolymorphTally], n_subcells: int, n_valid: int, config: dict) -> dict[str, Any]:
    """report.json's content."""
    winner = predicted_polymorph(rows)
    lowest = lowest_energy_product(rows)
    if winner is not None:
        prediction = {
            "polymorph": winner.name,
            "spacegroup_symbol": winner.spacegroup_symbol,
            "spacegroup_number": winner.spacegroup_number,
            "count": winner.count,
            "share": winner.share,
            "share_ci95": [winner.share_ci_low, winner.share_ci_high],
        }
    else:
        prediction = {
            "polymorph": None,
            "message": f"no relaxed subcell matched a known polymorph of {run.formula.reduced}",
        }
    return {
        "formula": run.formula.reduced,
        "prediction": prediction,
        "lowest_energy_product": None
        if lowest is None
        else {
            "name": lowest.name,
            "known": lowest.known,
            "spacegroup_symbol": lowest.spacegroup_symbol,
            "spacegroup_number": lowest.spacegroup_number,
            "energy_per_atom": lowest.lowest_energy_per_atom,
            "subcell": lowest.lowest_energy_subcell,
        },
        "polymorphs": [r.to_dict() for r in rows],
        "n_subcells": n_subcells,
        "n_valid": n_valid,
        "replicas": run.settings.melt_quench.replicas,
        "sampling": run.out.read_json(files.SAMPLING) if run.out.has(files.SAMPLING) else {"mode": "fixed", "relaxed": n_subcells},
        "potential": config["potential"]["used"],
        "preset": run.settings.preset,
        "seed": run.settings.seed,
        "reference_volume": asdict(reference_volume(run.formula, run.references())),
        "known_polymorphs": {"sources": list(run.settings.databases), "names": [p.name for p in run.references()]},
        "timings": dict(run.timings),
    }
