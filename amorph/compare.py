"""`amorph compare`: energies of the known polymorphs under the chosen potential, beside a run's shares.

Puts the prediction in context: is the polymorph that emerges most often the ground state, or a
metastable one (Ostwald's rule of stages)?
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from pymatgen.io.ase import AseAtomsAdaptor

from amorph.composition import parse_formula
from amorph.errors import AmorphError
from amorph.progress import ProgressSink, SilentProgress
from matching.database import known_polymorphs
from md.potentials import load_potential
from md.relax import relax
from results import rundir as files
from results.rundir import RunDir


def polymorph_energies(
    formula_text: str,
    potential_spec: str,
    device: str = "auto",
    fmax: float = 0.02,
    max_steps: int = 300,
    progress: ProgressSink | None = None,
) -> tuple[list[dict[str, Any]], str]:
    """Relax each known polymorph (primitive cell, atoms and cell); rows sorted by energy per atom."""
    progress = progress or SilentProgress()
    formula = parse_formula(formula_text)
    polymorphs = known_polymorphs(formula.reduced)
    if not polymorphs:
        raise AmorphError(f"no known polymorphs of {formula.reduced} in the database")
    potential = load_potential(potential_spec, device)
    potential.check_covers(formula.elements)
    calculator = potential.make_calculator()
    progress.start(f"Relaxing {len(polymorphs)} polymorphs of {formula.reduced}", len(polymorphs))
    rows = []
    for pm in polymorphs:
        atoms = AseAtomsAdaptor().get_atoms(pm.structure.get_primitive_structure())
        result = relax(atoms, calculator, fmax, max_steps)
        rows.append(
            {
                "name": pm.name,
                "mineral": pm.mineral,
                "spacegroup_symbol": pm.spacegroup_symbol,
                "spacegroup_number": pm.spacegroup_number,
                "ground_state": pm.ground_state,
                "source": pm.source,
                "n_atoms": len(atoms),
                "energy_per_atom": result.final_energy / len(atoms),
                "converged": result.converged,
                "volume_per_atom": result.atoms.get_volume() / len(atoms),
            }
        )
        progress.advance()
    progress.finish()
    lowest = min(r["energy_per_atom"] for r in rows)
    for r in rows:
        r["energy_above_lowest"] = r["energy_per_atom"] - lowest
    return sorted(rows, key=lambda r: r["energy_per_atom"]), potential.name


def compare_run(run_dir: Path, device: str = "auto", progress: ProgressSink | None = None) -> tuple[list[dict[str, Any]], str]:
    """A finished run's polymorph shares beside the energies, with the run's own potential."""
    run = RunDir(run_dir)
    if not (run.has(files.CONFIG) and run.has(files.POLYMORPHS_CSV)):
        raise AmorphError(f"{run_dir} is not a finished amorph run (needs {files.CONFIG} and {files.POLYMORPHS_CSV})")
    config = run.read_json(files.CONFIG)
    settings = config["settings"]
    rows, used = polymorph_energies(
        config["formula"], config["potential"]["used"], device, fmax=settings["relax"]["fmax"], progress=progress
    )
    table = run.read_csv(files.POLYMORPHS_CSV)
    shares = {r.name: (int(r.count), float(r.share)) for r in table.itertuples()}
    for r in rows:
        r["count"], r["share"] = shares.get(r["name"], (0, 0.0))
    return rows, used
