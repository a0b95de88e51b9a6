"""Is the loaded potential sane? One evaluation of the formula's reference crystal before any MD.

Model weights of the wrong version load without an error and give nonsense: matgl weights from
another matgl release have been seen to relax anatase to -21 eV/atom. A run on such a potential
would take hours and then name some structure with full confidence. The ideal crystal from the
database is the one structure whose answer is known in outline: a finite energy in the range
that DFT-trained potentials give (the lowest PBE energies per atom, of 5d metals and their
carbides, are about -13 eV), finite forces and stress, and small forces, since the crystal sits at
or near a minimum of any reasonable potential.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from amorph.errors import AmorphError

if TYPE_CHECKING:
    from amorph.composition import Formula
    from amorph.matching.polymorph import Polymorph
    from amorph.md.potentials import LoadedPotential

ENERGY_WINDOW = (-15.0, 5.0)  # eV/atom: every DFT-trained potential and EMT fall inside for real crystals
# eV/A on any atom of the reference crystal. Not 1: a DFT-trained potential puts the experimental
# crystal off its own minimum, and stiff short bonds turn that into forces of a few eV/A. Measured
# under CHGNet on the 169 built-in crystals: the largest force 3.8 eV/A (gamma-Al2O3), on a ground
# state 3.3 (gamma-WO3; then alpha-MoO3 2.0, alpha-V2O5 2.0, beta-Si3N4 1.2, calcite 1.1), and a
# limit of 1 refused those five formulas. Wrong weights show in the energy (anatase at -21 eV/atom,
# the scaled model of the tests at 8e6 eV/atom) long before a force of 10 eV/A.
MAX_FORCE = 10.0


@dataclass(frozen=True)
class SanityResult:
    energy_per_atom: float
    max_force: float
    problem: str | None  # what failed, or None


def judge(energy: float, forces: np.ndarray, stress: np.ndarray, n_atoms: int) -> SanityResult:
    """The checks on one evaluation of the reference crystal."""
    per_atom = energy / n_atoms
    max_force = float(np.max(np.linalg.norm(forces, axis=1))) if np.all(np.isfinite(forces)) and len(forces) else float("nan")
    if not np.isfinite(per_atom):
        return SanityResult(per_atom, max_force, "its energy is not finite")
    if not (np.all(np.isfinite(forces)) and np.all(np.isfinite(stress))):
        return SanityResult(per_atom, max_force, "its forces or stress are not finite")
    low, high = ENERGY_WINDOW
    if not low <= per_atom <= high:
        return SanityResult(per_atom, max_force, f"{per_atom:.2f} eV/atom lies outside {low:g} to {high:g} eV/atom")
    if max_force > MAX_FORCE:
        return SanityResult(per_atom, max_force, f"a force of {max_force:.2f} eV/A exceeds {MAX_FORCE:g} eV/A")
    return SanityResult(per_atom, max_force, None)


def check_potential(potential_name: str, evaluate, reference: Atoms, reference_name: str) -> SanityResult:
    """Evaluate the reference crystal (`evaluate(list[Atoms]) -> [Evaluation]`); AmorphError, naming the
    potential and the check, when the potential fails it."""
    try:
        [result] = evaluate([reference])
    except Exception as err:  # any failure of the model on a real crystal is the finding
        raise AmorphError(f"potential '{potential_name}' failed on {reference_name}: {type(err).__name__}: {err}") from None
    verdict = judge(result.energy, np.asarray(result.forces), np.asarray(result.stress), len(reference))
    if verdict.problem is not None:
        raise AmorphError(
            f"potential '{potential_name}' gives nonsense on {reference_name}: {verdict.problem} "
            "(wrong or mismatched model weights?); --skip-potential-check runs anyway"
        )
    return verdict


def check_on_reference(potential: LoadedPotential, polymorphs: list[Polymorph], formula: Formula) -> str:
    """Refuse, before any file is written, a potential that gives nonsense on the formula's reference
    crystal: the ground state where a source marks one, else every known polymorph in turn until one
    passes (a user's file may hold a strained cell, which is no fault of the potential). Wrong model
    weights load without an error."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from amorph.md.evaluators import make_evaluator

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
