"""The stage between identification and ranking: how close the amorphous solid is to each polymorph.

Relaxes each replica's amorphous cell to its inherent structure (atoms and cell, at most
AMORPHOUS_RELAX_STEPS FIRE steps) and every known polymorph (primitive cell, as `amorph compare`
does), under the run's potential, then compares them (matching.similarity). The relaxed cells are
kept beside the numbers so that an expert can check both.

Why the inherent structure and not the quenched cell: the quench runs at a fixed volume 1.15x the
crystal's, so only a relaxed cell has the amorphous solid's own density; and a 300 K cell's thermal
spread would count against every 0 K crystal. Why a step cap: an amorphous cell's energy landscape
is rough and FIRE creeps in its last steps; the cap keeps the stage a small part of a run. An
unconverged amorphous energy is an upper bound on the relaxed one, so a polymorph marked above it is
above the relaxed amorphous solid too (the unreachable mark errs towards reachable); the report
says how many replicas converged.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from ase import Atoms

from amorph.compare import POLYMORPH_RELAX_STEPS, relaxed_polymorphs
from amorph.matching.local_structure import BOND_FACTOR, SOAP_SETTINGS, local_structure
from amorph.matching.polymorph import Polymorph
from amorph.matching.similarity import similarity_table, to_dict
from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import make_evaluator
from amorph.md.potentials import LoadedPotential
from amorph.progress import ProgressSink
from amorph.results import rundir as files

if TYPE_CHECKING:
    from amorph.run import Run

AMORPHOUS_RELAX_STEPS = 50  # FIRE steps on each replica's amorphous cell (module docstring); 100 cost 13% of a quick CaF2 run


def compare_with_amorphous(
    formula: str, cells: list[Atoms], references: list[Polymorph], potential: LoadedPotential, fmax: float, progress: ProgressSink,
) -> tuple[dict[str, Any], list[Atoms], list[Atoms]]:
    """similarity.json's content, the relaxed amorphous cells and the relaxed polymorphs (named in info)."""
    progress.start(f"Relaxing {len(cells)} amorphous cell{'s' if len(cells) > 1 else ''} to compare with the polymorphs", len(cells))
    results = relax_many([c.copy() for c in cells], make_evaluator(potential), fmax, AMORPHOUS_RELAX_STEPS,
                         on_done=lambda _i, _r: progress.advance())
    progress.finish()
    rows, crystals = relaxed_polymorphs(formula, references, potential, fmax, POLYMORPH_RELAX_STEPS, progress)
    species = tuple(sorted({s for c in cells for s in c.get_chemical_symbols()}))
    relaxed = []
    for k, (cell, result) in enumerate(zip(cells, results)):
        atoms = result.atoms.copy()
        atoms.calc = None
        atoms.info = {"replica": int(cell.info.get("replica", k)), "energy_per_atom": result.final_energy / len(atoms),
                      "quenched_energy_per_atom": result.initial_energy / len(atoms), "relax_steps": result.steps,
                      "converged": result.converged}
        relaxed.append(atoms)
    amorphous = [local_structure(a, species) for a in relaxed]
    energies = {r["name"]: r["energy_per_atom"] for r in rows}
    amorphous_energy = float(np.mean([a.info["energy_per_atom"] for a in relaxed]))
    structures = {name: local_structure(a, species) for name, a in crystals.items()}
    table = similarity_table(amorphous, structures, energies, amorphous_energy)
    by_name = {r["name"]: r for r in rows}
    frames = []
    for name, atoms in crystals.items():
        frame = atoms.copy()
        frame.calc = None
        frame.info = {"name": name, "energy_per_atom": by_name[name]["energy_per_atom"], "converged": by_name[name]["converged"]}
        frames.append(frame)
    content = {
        "amorphous": {
            "energy_per_atom": amorphous_energy,
            "energy_per_atom_se": float(np.std([a.info["energy_per_atom"] for a in relaxed], ddof=1) / np.sqrt(len(relaxed)))
            if len(relaxed) > 1 else 0.0,
            "replicas": [{"replica": a.info["replica"], "energy_per_atom": a.info["energy_per_atom"],
                          "quenched_energy_per_atom": a.info["quenched_energy_per_atom"], "volume_per_atom": a.get_volume() / len(a),
                          "relax_steps": a.info["relax_steps"], "converged": a.info["converged"],
                          "mean_coordination": s.mean_coordination} for a, s in zip(relaxed, amorphous)],
            "relax_steps_cap": AMORPHOUS_RELAX_STEPS,
        },
        "polymorphs": [to_dict(p) | {"converged": by_name[p.name]["converged"], "volume_per_atom": by_name[p.name]["volume_per_atom"],
                                     "ground_state": by_name[p.name]["ground_state"], "origin": by_name[p.name]["origin"],
                                     "mean_coordination": structures[p.name].mean_coordination,
                                     "n_atoms": by_name[p.name]["n_atoms"]}
                       for p in table],
        "settings": {"bond_factor": BOND_FACTOR, "soap": SOAP_SETTINGS, "fmax": fmax, "components": "mean of density, rdf, "
                     "coordination, angles, soap (amorph.matching.similarity)"},
    }
    return content, relaxed, frames


def compare_with_polymorphs(run: Run, progress: ProgressSink) -> None:
    """Between steps 5 and 6: how close each replica's amorphous cell is to each known polymorph, and
    where each polymorph lies against the amorphous solid's energy (amorph.closeness)."""
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
