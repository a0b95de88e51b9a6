"""The known polymorphs a run names its products against, from the `--db` sources.

Gathered once per run and saved in the run directory (known_polymorphs.json), so that every later
stage, a resumed run and `amorph compare` use exactly the same references. When no source knows the
formula and `prototypes` is among the sources, the AFLOW structure types of the formula's
stoichiometry are relaxed with the run's potential and stand in for the known polymorphs.
"""

from __future__ import annotations

import math
from dataclasses import replace

from pymatgen.io.ase import AseAtomsAdaptor

from amorph.composition import Formula, volume_per_atom_from_radii
from amorph.matching.polymorph import Polymorph
from amorph.matching.prototypes import prototype_polymorphs
from amorph.matching.sources import PROTOTYPES, gather, merge
from amorph.matching.symmetry import find_symmetry
from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import make_evaluator
from amorph.md.potentials import LoadedPotential
from amorph.md.relax import invalid_reason
from amorph.progress import ProgressSink

PROTOTYPE_FMAX = 0.05  # eV/A
PROTOTYPE_STEPS = 200


def needs_prototypes(specs: tuple[str, ...], found: list[Polymorph]) -> bool:
    """Prototypes stand in only when asked for and no other source knows the formula."""
    return PROTOTYPES in specs and not found


def relaxed_prototypes(
    formula: Formula, potential: LoadedPotential, max_atoms: int, progress: ProgressSink, fusion_distance: float = 1.5
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
) -> list[Polymorph]:
    """The run's references: the sources' entries, else relaxed prototypes when allowed."""
    found = gather(formula.reduced, specs) if gathered is None else gathered
    if needs_prototypes(specs, found):
        found = relaxed_prototypes(formula, potential, max_atoms, progress)
    return found
