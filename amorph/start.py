"""Stage 1: the starting cell: size from the formula, volume from the reference crystal."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from ase import Atoms

from amorph.composition import Formula, number_of_atoms, volume_per_atom_from_radii
from amorph.errors import AmorphError
from amorph.matching.polymorph import Polymorph
from amorph.packing import CONTACT_FRACTION, random_packing
from amorph.progress import ProgressSink
from amorph.results import rundir as files
from amorph.run import STREAM_PACKING, replica_rngs
from amorph.settings import PackingSettings

if TYPE_CHECKING:
    from amorph.run import Run


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


def room_needed(formula: Formula, polymorph: Polymorph, reference: ReferenceVolume) -> tuple[float, int]:
    """The longest edge (A) of the polymorph's most compact cell, and the fewest atoms (whole formula
    units) whose cubic starting cell is that long at the amorphous density (see out_of_room)."""
    from amorph.matching.symmetry import longest_edge  # spglib: not needed for the rest of stage 1

    edge = longest_edge(polymorph.structure)
    per_unit = formula.atoms_per_formula_unit
    return edge, per_unit * math.ceil(edge**3 / reference.per_atom / per_unit - 1e-9)


def starting_cell(formula: Formula, settings: PackingSettings, polymorphs: list[Polymorph]) -> tuple[int, float, ReferenceVolume]:
    """Atoms in the starting cell, its volume (A^3), and the reference crystal that volume comes from.

    The cell holds --atoms, grown up to --grow-to where that gives room to a known polymorph that
    settles an answer (Polymorph.settles_answer) and is longer than the cell: a subcell can become no
    crystal longer than the box it was cut from, and a polymorph that cannot form leaves any answer
    inconclusive. The growth is the least that holds every such polymorph within the cap; one beyond
    it stays out of reach (out_of_room) and the report names it."""
    n_atoms = number_of_atoms(formula, settings.target_atoms)
    reference = reference_volume(formula, polymorphs)
    if settings.grow_to > n_atoms:
        wanted = [atoms for p in polymorphs if p.settles_answer
                  for _, atoms in [room_needed(formula, p, reference)] if n_atoms < atoms <= settings.grow_to]
        n_atoms = max([n_atoms, *wanted])
    return n_atoms, settings.volume_factor * reference.per_atom * n_atoms, reference


@dataclass(frozen=True)
class OutOfRoom:
    """A known polymorph whose most compact cell is longer than the starting cell allows."""

    name: str
    edge: float  # longest edge of its Niggli-reduced primitive cell, A (matching.symmetry.longest_edge)
    needed: float  # that edge at the amorphous density (volume_factor^(1/3) longer), A
    atoms: int  # the fewest atoms (whole formula units) whose starting cell is that long

    def describe(self) -> str:
        """'a cell edge of 9.2 A, 9.6 A at the amorphous density; --atoms 75': stage 0's note and the report's reason."""
        return f"a cell edge of {self.edge:.1f} A, {self.needed:.1f} A at the amorphous density; --atoms {self.atoms}"


def out_of_room(formula: Formula, settings: PackingSettings, polymorphs: list[Polymorph]) -> tuple[int, float, list[OutOfRoom]]:
    """The starting cell's atoms and edge (A), and the known polymorphs no subcell of it can become by
    its shape.

    Subcells are boxes cut from the cubic starting cell, so none is longer than its edge L; a crystal
    forms in a box only if the box's edges span a cell of that crystal, and every cell of a crystal has
    an edge at least as long as its most compact cell's longest edge e. At the amorphous density
    (volume_factor x the reference crystal's) that edge is e x volume_factor^(1/3), so a polymorph with
    e x volume_factor^(1/3) > L is out of reach unless relaxation stretches a box past the cell. The
    room needs L^3 = N x volume_factor x v_ref: N >= e^3 / v_ref atoms (the volume factor cancels).
    """
    n_atoms, volume, reference = starting_cell(formula, settings, polymorphs)
    edge = volume ** (1 / 3)
    stretch = settings.volume_factor ** (1 / 3)
    out = []
    for polymorph in polymorphs:
        e, atoms = room_needed(formula, polymorph, reference)
        if e * stretch > edge * (1 + 1e-9):
            out.append(OutOfRoom(polymorph.name, e, e * stretch, atoms))
    return n_atoms, edge, out


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
