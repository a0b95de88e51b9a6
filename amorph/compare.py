"""`amorph compare`: energies of the known polymorphs under the chosen potential, beside a run's shares.

Puts the prediction in context: is the polymorph that emerges most often the ground state, or a
metastable one (Ostwald's rule of stages)?
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.composition import parse_formula
from amorph.errors import AmorphError
from amorph.matching.polymorph import Polymorph
from amorph.matching.sources import check_sources
from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import make_evaluator
from amorph.md.potentials import LoadedPotential, load_potential
from amorph.progress import ProgressSink, SilentProgress
from amorph.references import collect
from amorph.results import rundir as files
from amorph.results.report import similarity_section
from amorph.results.rundir import RunDir
from amorph.settings import DEFAULT_DATABASES
from amorph.threads import one_blas_thread

POLYMORPH_RELAX_STEPS = 300  # FIRE steps per known polymorph, here and in the similarity stage (amorph.closeness)
PROTOTYPE_MAX_ATOMS = 24  # prototypes with larger primitive cells are not relaxed for a comparison


def polymorph_energies(
    formula_text: str,
    potential_spec: str,
    device: str = "auto",
    fmax: float = 0.02,
    max_steps: int = POLYMORPH_RELAX_STEPS,
    progress: ProgressSink | None = None,
    sources: tuple[str, ...] = DEFAULT_DATABASES,
) -> tuple[list[dict[str, Any]], str]:
    """Relax each known polymorph of a formula from the --db sources; rows sorted by energy per atom."""
    progress = progress or SilentProgress()
    one_blas_thread()
    formula = parse_formula(formula_text)
    check_sources(sources)
    potential = load_potential(potential_spec, device)
    potential.check_covers(formula.elements)
    polymorphs = collect(formula, sources, potential, PROTOTYPE_MAX_ATOMS, progress)
    if not polymorphs:
        raise AmorphError(f"no known polymorphs of {formula.reduced} in {', '.join(sources)}")
    return relax_polymorphs(formula.reduced, polymorphs, potential, fmax, max_steps, progress), potential.name


def relax_polymorphs(
    formula: str, polymorphs: list[Polymorph], potential: LoadedPotential, fmax: float, max_steps: int, progress: ProgressSink
) -> list[dict[str, Any]]:
    """Relax each polymorph's primitive cell (atoms and cell) with the potential; rows sorted by energy."""
    return relaxed_polymorphs(formula, polymorphs, potential, fmax, max_steps, progress)[0]


def relaxed_polymorphs(
    formula: str, polymorphs: list[Polymorph], potential: LoadedPotential, fmax: float, max_steps: int, progress: ProgressSink
) -> tuple[list[dict[str, Any]], dict[str, Atoms]]:
    """relax_polymorphs' rows, and each polymorph's relaxed cell by name (none for no polymorphs)."""
    if not polymorphs:
        return [], {}
    progress.start(f"Relaxing {len(polymorphs)} polymorphs of {formula}", len(polymorphs))
    starts = [AseAtomsAdaptor().get_atoms(pm.structure.get_primitive_structure()) for pm in polymorphs]
    results = relax_many(starts, make_evaluator(potential), fmax, max_steps, on_done=lambda _i, _r: progress.advance())
    rows = [polymorph_row(pm, len(atoms), result.final_energy / len(atoms), result.converged, result.atoms.get_volume() / len(atoms))
            for pm, atoms, result in zip(polymorphs, starts, results)]
    progress.finish()
    return by_energy(rows), {pm.name: result.atoms for pm, result in zip(polymorphs, results)}


def polymorph_row(pm: Polymorph, n_atoms: int, energy_per_atom: float, converged: bool, volume_per_atom: float) -> dict[str, Any]:
    """One polymorph's line of compare.csv."""
    return {
        "name": pm.name,
        "mineral": pm.mineral,
        "spacegroup_symbol": pm.spacegroup_symbol,
        "spacegroup_number": pm.spacegroup_number,
        "ground_state": pm.ground_state,
        "origin": pm.origin,
        "source": pm.source,
        "n_atoms": n_atoms,
        "energy_per_atom": energy_per_atom,
        "converged": converged,
        "volume_per_atom": volume_per_atom,
    }


def by_energy(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows sorted by energy per atom, each with its energy above the lowest."""
    lowest = min(r["energy_per_atom"] for r in rows)
    for r in rows:
        r["energy_above_lowest"] = r["energy_per_atom"] - lowest
    return sorted(rows, key=lambda r: r["energy_per_atom"])


def ordering_across(by_potential: dict[str, list[dict[str, Any]]]) -> dict[str, Any]:
    """Whether several potentials put the known polymorphs in the same energy order: the lowest under
    each, whether those agree, and the pairs of polymorphs whose order flips between two potentials.
    Energies are compared within a potential only: their zero differs from model to model (CHGNet
    carries the Materials Project's corrections; r2SCAN-trained models sit eV/atom lower)."""
    lowest = {p: rows[0]["name"] for p, rows in by_potential.items() if rows}
    order = {p: [r["name"] for r in rows] for p, rows in by_potential.items()}
    names = [r["name"] for r in next(iter(by_potential.values()))]
    flips = []
    for i, a in enumerate(names):
        for b in names[i + 1 :]:
            below = {p: ranks.index(a) < ranks.index(b) for p, ranks in order.items() if a in ranks and b in ranks}
            if len(set(below.values())) > 1:
                flips.append({"pair": [a, b], "lower": {p: a if first else b for p, first in below.items()}})
    agree = len(set(lowest.values())) == 1
    summary = ("every potential puts " + next(iter(lowest.values())) + " lowest" if agree else
               "the potentials disagree on the lowest: " + "; ".join(f"{p}: {n}" for p, n in lowest.items()))
    if flips:
        summary += f"; {len(flips)} pair(s) of polymorphs change order between potentials"
    return {"lowest": lowest, "lowest_agree": agree, "order_flips": flips, "summary": summary}


def compare_run(
    run_dir: Path, device: str = "auto", progress: ProgressSink | None = None
) -> tuple[list[dict[str, Any]], str, dict[str, Any]]:
    """A finished run's polymorph shares beside the energies of the references it was matched against,
    relaxed with the run's own potential; and how close its amorphous solid is to each (report.json's
    `similarity` section: the run's similarity.json, or measured now for a run made before it existed)."""
    progress = progress or SilentProgress()
    one_blas_thread()
    run = RunDir(run_dir)
    needed = (files.CONFIG, files.POLYMORPHS_CSV, files.KNOWN_POLYMORPHS, files.AMORPHOUS_XYZ)
    if not all(run.has(name) for name in needed):
        raise AmorphError(f"{run_dir} is not a finished amorph run (needs {', '.join(needed)})")
    config = run.read_json(files.CONFIG)
    polymorphs = [Polymorph.from_dict(d) for d in run.read_json(files.KNOWN_POLYMORPHS)["polymorphs"]]
    if not polymorphs:
        raise AmorphError(f"{run_dir}: the run had no known polymorphs to compare")
    potential = load_potential(config["potential"]["used"], device)
    fmax = config["settings"]["relax"]["fmax"]
    if run.has(files.SIMILARITY):  # the polymorphs relaxed by the run itself, as below
        closeness = run.read_json(files.SIMILARITY)
    else:  # a run made before the similarity stage
        from amorph.closeness import compare_with_amorphous  # dscribe's start-up, only when needed

        closeness = compare_with_amorphous(config["formula"], run.read_atoms(files.AMORPHOUS_XYZ), polymorphs, potential, fmax, progress)[0]
    known = {p["name"]: p for p in closeness["polymorphs"]}
    rows = by_energy([polymorph_row(pm, known[pm.name]["n_atoms"], known[pm.name]["energy_per_atom"], known[pm.name]["converged"],
                                    known[pm.name]["volume_per_atom"]) for pm in polymorphs])
    table = run.read_csv(files.POLYMORPHS_CSV)
    shares = {r.name: (int(r.count), float(r.share)) for r in table.itertuples()}
    for r in rows:
        r["count"], r["share"] = shares.get(r["name"], (0, 0.0))
    return rows, potential.name, similarity_section(closeness, shares)
