"""Stage 1: the starting cell: size from the formula, volume from the reference crystal."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from ase import Atoms

from amorph.composition import Formula, number_of_atoms, volume_per_atom_from_radii
from amorph.errors import AmorphError
from amorph.matching.polymorph import Polymorph
from amorph.packing import CONTACT_FRACTION, random_packing
from amorph.settings import PackingSettings


@dataclass(frozen=True)
class ReferenceVolume:
    """Volume per atom of the reference crystal and where it came from."""

    per_atom: float  # A^3
    source: str


def reference_volume(formula: Formula, polymorphs: list[Polymorph]) -> ReferenceVolume:
    """The ground-state polymorph's volume when a source marks one, else a radii estimate."""
    reference = next((p for p in polymorphs if p.ground_state), None)
    if reference is not None:
        s = reference.structure
        return ReferenceVolume(s.volume / len(s), f"{reference.name} ({reference.origin})")
    return ReferenceVolume(volume_per_atom_from_radii(formula), "estimate from covalent radii")


def starting_cell(formula: Formula, settings: PackingSettings, polymorphs: list[Polymorph]) -> tuple[int, float, ReferenceVolume]:
    """Atoms in the starting cell, its volume (A^3), and the reference crystal that volume comes from."""
    n_atoms = number_of_atoms(formula, settings.target_atoms)
    reference = reference_volume(formula, polymorphs)
    return n_atoms, settings.volume_factor * reference.per_atom * n_atoms, reference


def check_room(formula: Formula, settings: PackingSettings, polymorphs: list[Polymorph]) -> None:
    """Refuse a starting cell too small for its atoms (a tiny --volume-factor), before any work: the
    atoms' contact spheres (packing.CONTACT_FRACTION of their covalent radii) cannot fill more of
    space than a dense random packing does, so no push could part them and the MD would blow up."""
    n_atoms, volume, _ = starting_cell(formula, settings, polymorphs)
    _refuse_crowded(formula, settings, n_atoms, volume)


def _refuse_crowded(formula: Formula, settings: PackingSettings, n_atoms: int, volume: float) -> None:
    needed = CONTACT_FRACTION**3 * volume_per_atom_from_radii(formula) * n_atoms
    if volume < needed:
        raise AmorphError(
            f"--volume-factor {settings.volume_factor:g} makes a cell of {volume:.0f} A^3, too small for its {n_atoms} atoms "
            f"(they need at least {needed:.0f} A^3: a volume factor of at least {needed / volume * settings.volume_factor:.2f})"
        )


def start_structure(
    formula: Formula, settings: PackingSettings, rng: np.random.Generator, polymorphs: list[Polymorph]
) -> tuple[Atoms, ReferenceVolume]:
    """Random cubic cell of ~target_atoms atoms at volume_factor x the reference crystal volume."""
    n_atoms, volume, reference = starting_cell(formula, settings, polymorphs)
    _refuse_crowded(formula, settings, n_atoms, volume)  # again: the reference may have come from relaxed prototypes
    return random_packing(formula, n_atoms, volume, rng), reference
