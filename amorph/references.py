"""The known polymorphs a run names its products against, from the `--db` sources.

Gathered once per run and saved in the run directory (known_polymorphs.json), so that every later
stage, a resumed run and `amorph compare` use exactly the same references. When no source knows the
formula and `prototypes` is among the sources, the AFLOW structure types of the formula's
stoichiometry are relaxed with the run's potential and stand in for the known polymorphs.
"""

from __future__ import annotations

import math
from dataclasses import asdict, replace
from typing import TYPE_CHECKING

from pymatgen.io.ase import AseAtomsAdaptor

from amorph.composition import Formula, number_of_atoms, volume_per_atom_from_radii
from amorph.matching.polymorph import Polymorph
from amorph.matching.prototypes import prototype_polymorphs
from amorph.matching.sources import PROTOTYPES, gather, merge
from amorph.matching.symmetry import find_symmetry
from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import make_evaluator
from amorph.md.potentials import LoadedPotential
from amorph.md.relax import invalid_reason
from amorph.progress import ProgressSink
from amorph.reach import check_reachable, subcell_size_limit
from amorph.results import rundir as files
from amorph.settings import DEFAULT_FUSION_DISTANCE
from amorph.start import out_of_room
from amorph.suitability import suitability_warnings

if TYPE_CHECKING:
    from amorph.run import Run

PROTOTYPE_FMAX = 0.05  # eV/A
PROTOTYPE_STEPS = 200


def needs_prototypes(specs: tuple[str, ...], found: list[Polymorph]) -> bool:
    """Prototypes stand in only when asked for and no other source knows the formula."""
    return PROTOTYPES in specs and not found


def relaxed_prototypes(
    formula: Formula, potential: LoadedPotential, max_atoms: int, progress: ProgressSink,
    fusion_distance: float = DEFAULT_FUSION_DISTANCE,
) -> list[Polymorph]:
    """Every prototype of the formula's stoichiometry (primitive cell <= max_atoms), relaxed with the potential.

    Candidates that fail, blow up or fuse are dropped; relaxed candidates that turn into the same
    structure are merged; the lowest in energy is marked as the ground state (of this potential).
    """
    candidates = prototype_polymorphs(formula.reduced, volume_per_atom_from_radii(formula), max_atoms)
    adaptor = AseAtomsAdaptor()
    progress.start(f"Relaxing {len(candidates)} prototype structures of {formula.reduced}", len(candidates))
    starts = [adaptor.get_atoms(c.structure) for c in candidates]
    results = relax_many(
        starts, make_evaluator(potential), PROTOTYPE_FMAX, PROTOTYPE_STEPS, on_done=lambda _i, _r: progress.advance()
    )
    relaxed: list[tuple[float, Polymorph]] = []
    dropped = []
    for candidate, atoms, result in zip(candidates, starts, results):
        reason = invalid_reason(result, atoms.get_volume(), fusion_distance, -math.inf)
        if reason:
            dropped.append(f"{candidate.name} ({reason})")
            continue
        final = adaptor.get_structure(result.atoms)
        sym = find_symmetry(final)
        relaxed.append(
            (
                result.final_energy / len(result.atoms),
                replace(
                    candidate,
                    structure=final,
                    spacegroup_symbol=sym.symbol,
                    spacegroup_number=sym.number,
                    source=f"{candidate.source}; relaxed with {potential.name}",
                    note=candidate.note.replace("unrelaxed", "relaxed"),
                ),
            )
        )
    progress.finish()
    if dropped:  # a prototype that did not survive its relaxation is no reference: say which and why
        progress.note(f"{len(dropped)} of {len(candidates)} prototypes dropped after relaxing: {'; '.join(dropped)}")
    relaxed.sort(key=lambda ep: ep[0])
    if relaxed:
        energy, lowest = relaxed[0]
        relaxed[0] = (energy, replace(lowest, ground_state=True, note=lowest.note + f" Lowest in energy under {potential.name}."))
    return merge([], [p for _, p in relaxed])


def collect(
    formula: Formula,
    specs: tuple[str, ...],
    potential: LoadedPotential,
    max_atoms: int,
    progress: ProgressSink,
    gathered: list[Polymorph] | None = None,
    fusion_distance: float = DEFAULT_FUSION_DISTANCE,
) -> list[Polymorph]:
    """The run's references: the sources' entries, else relaxed prototypes when allowed."""
    found = gather(formula.reduced, specs) if gathered is None else gathered
    if needs_prototypes(specs, found):
        found = relaxed_prototypes(formula, potential, max_atoms, progress, fusion_distance)
    return found


def collect_references(run: Run, progress: ProgressSink) -> None:
    """Step 0: the known polymorphs products are named against (relaxed prototypes when no source knows
    any), the subcell size range they set and the ones the starting cell has no room for."""
    polymorphs = collect(run.formula, run.settings.databases, run.potential, run.settings.subcells.n_max, progress,
                         run.gathered, run.settings.relax.fusion_distance)
    origins = sorted({p.origin for p in polymorphs})
    progress.note(f"known polymorphs of {run.formula.display}: {len(polymorphs)} ({', '.join(origins) or 'none'})")
    for line in suitability_warnings(run.formula, polymorphs, run.potential.dispersion, run.settings.melt_quench.t_high):
        progress.note(f"warning: {line}")
    n_atoms, edge, roomless = out_of_room(run.formula, run.settings.packing, polymorphs)
    asked = number_of_atoms(run.formula, run.settings.packing.target_atoms)
    if n_atoms > asked:
        progress.note(f"the starting cell grows from {asked} to {n_atoms} atoms ({edge:.1f} A on a side) to hold the known "
                      f"polymorphs longer than it (--grow-to {run.settings.packing.grow_to})")
    # half the cell caps the subcells: --atoms as given unless the cell grew (a 99-atom TiO2 cell for
    # --atoms 100 keeps the cap of 50 it always had)
    limit = subcell_size_limit(run, polymorphs, roomless, n_atoms if n_atoms > asked else run.settings.packing.target_atoms)
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
        {"formula": run.formula.reduced, "sources": list(run.settings.databases), "polymorphs": [p.to_dict() for p in polymorphs]},
    )
    # apart from the polymorphs, so that a changed size range leaves what reads only them (the packing,
    # the comparison with the amorphous solid) as it was (amorph.stages)
    run.out.write_json(
        files.SUBCELL_RANGE,
        {"subcell_size_limit": asdict(limit),
         "cell_room": {"atoms": n_atoms, "atoms_asked": asked, "edge": edge, "too_short_for": [asdict(r) for r in roomless]}},
    )
