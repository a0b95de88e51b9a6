"""One row of subcells.csv: what became of one subcell, as a typed record.

Stage 5 writes the rows and stage 6 reads them back; the record's field types
say how each CSV cell is read, so no reader has to guess (an empty cell is "" for text and NaN for a
number: pandas writes NaN as an empty cell).
"""

from __future__ import annotations

import math
import typing
from dataclasses import MISSING, asdict, dataclass, fields
from typing import TYPE_CHECKING, Any

import numpy as np

from amorph.composition import parse_formula
from amorph.matching.identify import Identity
from amorph.matching.ranking import Outcome

if TYPE_CHECKING:
    from ase import Atoms

    from amorph.matching.polymorph import Polymorph
    from amorph.matching.symmetry import Symmetry


@dataclass(frozen=True)
class SubcellRecord:
    """A subcell: where it was cut, how its relaxation went, and what it became (columns in file order)."""

    id: int
    replica: int
    n_atoms: int
    formula: str  # of the subcell, e.g. "Ti2O4"
    lower: str  # fractional bounds in the amorphous cell, space-separated ("0 0.25 0"; bounds_text)
    upper: str
    cut_push: float  # farthest move, A, when contacts made by the cut were pushed apart
    initial_energy_per_atom: float  # eV/atom, as cut
    final_energy_per_atom: float  # eV/atom, relaxed
    relax_steps: int
    converged: bool
    valid: bool
    reason: str  # "ok", or why the relaxation is not trusted (md.relax.invalid_reason)
    spacegroup_symbol: str  # "" for invalid subcells
    spacegroup_number: int  # 0 for invalid subcells
    symprec: float  # A, the spglib tolerance that found the most symmetry
    match: str  # known polymorph name, or "unknown-K"; "" for invalid subcells
    known_polymorph: bool
    structure_type: str  # unknown products: prototype or AFLOW-style label
    closest_known: str  # unknown products: the known polymorph nearest in fingerprint
    fingerprint_distance: float
    # named by its layers: a known layered polymorph's layers in another stacking (matching.layers); last,
    # with a default, so that subcells.csv files written before it are still read
    stacking_variant: bool = False

    @classmethod
    def from_relaxed(cls, atoms: Atoms, symmetry: Symmetry | None, identity: Identity | None) -> SubcellRecord:
        """The record of a relaxed subcell (its info as stage 4 wrote it) and, when valid, its name."""
        info, n = atoms.info, len(atoms)
        return cls(
            id=info["subcell_id"],
            replica=int(info.get("replica", 0)),
            n_atoms=n,
            formula=atoms.get_chemical_formula(mode="metal"),
            lower=bounds_text(info["lower"]),
            upper=bounds_text(info["upper"]),
            cut_push=float(info.get("cut_push", 0.0)),
            initial_energy_per_atom=info["initial_energy"] / n,
            final_energy_per_atom=info["final_energy"] / n,
            relax_steps=info["relax_steps"],
            converged=info["converged"],
            valid=info["valid"],
            reason=info["reason"],
            spacegroup_symbol=symmetry.symbol if symmetry else "",
            spacegroup_number=symmetry.number if symmetry else 0,
            symprec=symmetry.symprec if symmetry else math.nan,
            match=identity.label if identity else "",
            known_polymorph=bool(identity and identity.known),
            structure_type=identity.structure_type if identity else "",
            closest_known=identity.closest_known if identity else "",
            fingerprint_distance=identity.closest_distance if identity else math.nan,
            stacking_variant=bool(identity and identity.stacking_variant),
        )

    def to_row(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_row(cls, row: dict[str, str]) -> SubcellRecord:
        """A record from a CSV row of text cells, each read as its field's type (ValueError naming the
        column when a cell is missing or unreadable)."""
        values = {}
        for f in fields(cls):
            if (f.name not in row or row[f.name] is None) and f.default is not MISSING:
                continue  # a column added later: files written before it take the default
            if f.name not in row or row[f.name] is None:
                raise ValueError(f"no column {f.name}")
            try:
                values[f.name] = _parse(row[f.name], _TYPES[f.name])
            except ValueError as err:
                raise ValueError(f"column {f.name}: {err}") from None
        return cls(**values)


def read_records(rows: list[dict[str, str]], where: str) -> list[SubcellRecord]:
    """The records of subcells.csv's rows; AmorphError naming the file and row for one that cannot be read
    (an edited file, or a run folder written by an older amorph)."""
    from amorph.errors import AmorphError

    records = []
    for k, row in enumerate(rows, start=2):  # line 1 is the header
        try:
            records.append(SubcellRecord.from_row(row))
        except ValueError as err:
            raise AmorphError(f"{where} line {k}: {err}") from None
    return records


_TYPES: dict[str, type] = typing.get_type_hints(SubcellRecord)
COLUMNS = tuple(f.name for f in fields(SubcellRecord))


def _parse(text: str, kind: type) -> Any:
    if kind is bool:
        if text not in ("True", "False"):
            raise ValueError(f"not a truth value: {text!r}")
        return text == "True"
    if kind is float:
        return float(text) if text else math.nan
    return kind(text)  # int raises ValueError on a non-number; str takes anything


def bounds_text(value: Any) -> str:
    """A subcell's fractional bounds as plain numbers, "0 0.25 0.6": stage 3 writes them as text, which
    ASE's extxyz reader turns back into an array (whose str() is numpy's "[0.   0.25 0.6 ]")."""
    numbers = np.atleast_1d(np.asarray(str(value).strip("[]").split() if isinstance(value, str) else value, dtype=float))
    return " ".join(f"{v:g}" for v in numbers)


def invalid_kind(reason: str) -> str:
    """A reason without its numbers ("atoms fused (0.41 A)" -> "atoms fused"), to count them by kind."""
    return reason.split(" (")[0]


def outcomes_of(valid: list[SubcellRecord], references: list[Polymorph]) -> list[Outcome]:
    """What each valid subcell of subcells.csv became, as the rules take it (matching.rules)."""
    polymorphs = {p.name: p for p in references}
    outcomes = []
    for r in valid:
        if r.known_polymorph:
            pm = polymorphs[r.match]
            identity = Identity(r.match, True, pm.spacegroup_symbol, pm.spacegroup_number, stacking_variant=r.stacking_variant)
        else:
            identity = Identity(
                r.match, False, r.spacegroup_symbol, r.spacegroup_number, r.structure_type, r.closest_known, r.fingerprint_distance
            )
        outcomes.append(Outcome(r.id, identity, r.final_energy_per_atom, parse_formula(r.formula).reduced, r.replica))
    return outcomes
