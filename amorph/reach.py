"""Which known polymorphs a run's subcells can become, and what a run says about the ones they cannot.

A subcell of N atoms can only relax into a crystal whose primitive cell divides N, and is unlikely to
become one longer than the starting cell it was cut from. Stage 0 raises the subcell size range to
fit the polymorphs the cell has room for and stops a run none of whose polymorphs fit; stage 6 names
what could not form, since no answer is conclusive while a database polymorph could not (its room
given as the setting that would make it), and the energies of the ones that could and did not.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from amorph.errors import AmorphError
from amorph.matching.polymorph import Polymorph
from amorph.matching.symmetry import primitive_size
from amorph.motifs.subcells import SizeLimit, size_limit
from amorph.progress import ProgressSink
from amorph.results import rundir as files
from amorph.start import OutOfRoom, out_of_room

if TYPE_CHECKING:
    from amorph.matching.ranking import PolymorphTally
    from amorph.run import Run


def primitive_sizes(polymorphs: list[Polymorph]) -> dict[str, int]:
    """Each known polymorph's primitive-cell size (atoms), by name."""
    return {p.name: primitive_size(p.structure) for p in polymorphs}


def polymorph_primitive_sizes(polymorphs: list[Polymorph]) -> list[int] | None:
    """Primitive-cell sizes of the known polymorphs; None when there are none."""
    if not polymorphs:
        return None
    return sorted(set(primitive_sizes(polymorphs).values()))


def subcell_size_limit(run: Run, polymorphs: list[Polymorph], roomless: list[OutOfRoom], cell_atoms: int) -> SizeLimit:
    """The subcell size range, raised only for the polymorphs the starting cell (of cell_atoms atoms)
    has room for: a subcell can become no polymorph longer than the cell, so larger subcells for one
    would spend the budget on relaxations that cannot reach it. When no polymorph has room, for all."""
    sc = run.settings.subcells
    too_long = {r.name for r in roomless}
    fitting = [p for p in polymorphs if p.name not in too_long] or polymorphs
    return size_limit(sc.n_max, sc.fit_polymorphs, cell_atoms, primitive_sizes(fitting).values())


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


def roomless_of(run: Run) -> tuple[float, list[OutOfRoom]]:
    """Stage 0's cell room (the starting cell's edge, the polymorphs too long for it), worked out again
    for a run folder older than the record."""
    where = files.SUBCELL_RANGE if run.out.has(files.SUBCELL_RANGE) else files.KNOWN_POLYMORPHS  # older runs: there
    room = run.out.read_json(where).get("cell_room")
    if room is None:
        _, edge, roomless = out_of_room(run.formula, run.settings.packing, run.references())
        return edge, roomless
    return room["edge"], [OutOfRoom(**r) for r in room["too_short_for"]]


def out_of_reach(sizes: dict[str, int], relaxed: set[int], cell_edge: float, roomless: list[OutOfRoom]) -> dict[str, str]:
    """Why no subcell of a run could become a known polymorph, or is unlikely to, by name.

    sizes: primitive-cell atoms of each; relaxed: the atom counts of the subcells relaxed. A subcell
    of N atoms can only become a crystal whose primitive cell divides N, so one that divides none of
    them could not form; one longer than the starting cell (amorph.start.out_of_room) is unlikely to."""
    why = {}
    for name, size in sizes.items():
        if relaxed and size > max(relaxed):
            why[name] = f"a primitive cell of {size} atoms, subcells of at most {max(relaxed)}"
        elif relaxed and all(n % size for n in relaxed):
            why[name] = f"a primitive cell of {size} atoms, no subcell a multiple of it ({', '.join(map(str, sorted(relaxed)))} atoms)"
    for r in roomless:
        why.setdefault(r.name, f"{r.describe()}: longer than the {cell_edge:.1f} A starting cell")
    return why


def could_not_form(references: list[Polymorph], reach: dict[str, str], sizes: dict[str, int], roomless: list[OutOfRoom]) -> list[str]:
    """The database's polymorphs (not prototypes, and not ordered models of a disordered phase, whose
    cell is the model's choice) that no subcell could become, each with the setting that would give it
    room, so the report says what would settle the answer: no answer is conclusive while one could not form."""
    room_from = {r.name: f"--atoms {r.atoms}" for r in roomless}
    return [f"{p.name} (room from {room_from.get(p.name, f'--n-max {sizes[p.name]}')})"
            for p in references if p.name in reach and p.settles_answer]


def unformed_energies(references: list[Polymorph], rows: list[PolymorphTally], reach: dict[str, str],
                      relaxed: dict[str, float]) -> dict[str, float]:
    """Energy per atom, relaxed under the run's potential (`relaxed`, from similarity.json), of each
    database polymorph (not a prototype, not an ordered model of a disordered phase) that the subcells
    could become and none did. An energy rule's answer is only as good as the sampling: one of these
    lower than the answer would have been named had a subcell found it (matching.rules.evidence_gaps)."""
    formed = {r.name for r in rows if r.known and r.count > 0}
    return {p.name: relaxed[p.name] for p in references
            if p.name not in reach and p.name not in formed and p.settles_answer and p.name in relaxed}
