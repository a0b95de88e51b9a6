"""A known polymorph, whichever source it came from (built-in data, Materials Project, user files, prototypes)."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from pymatgen.core import Structure


@dataclass(frozen=True)
class Polymorph:
    """One known polymorph: metadata plus its structure.

    ``structure`` may be shared between callers (loaders cache): copy it before modifying it.
    """

    formula: str  # reduced formula, pymatgen style
    name: str  # common name, lowercase, unique within the formula ("anatase", "mp-390", "rutile-type")
    mineral: str  # mineral name, "" when there is none
    spacegroup_symbol: str  # Hermann-Mauguin symbol as spglib reports it
    spacegroup_number: int
    structure: Structure
    source: str  # citation of the crystallographic data, or where the entry came from
    ground_state: bool  # the ambient-pressure ground state of the formula (experiment, or lowest E above hull)
    approximant: bool = False  # an ordered approximant of a disordered phase (see note)
    note: str = ""  # anything a scientist should know about the entry
    close_to: tuple[str, ...] = ()  # entries the product matcher cannot tell apart; space group does
    origin: str = "builtin"  # builtin | mp | a file path | prototypes
    energy_above_hull: float | None = None  # eV/atom, where the source knows it (Materials Project)

    @property
    def settles_answer(self) -> bool:
        """A database entry whose cell is the crystal's own (not a prototype, not an ordered model of a
        disordered phase, whose cell is the model's choice): an answer cannot be conclusive while one of
        these could not form, and the starting cell grows to hold them (amorph.start, amorph.reach)."""
        return self.origin != "prototypes" and not self.approximant

    def __hash__(self) -> int:
        """Hash by identity in the database (Structure itself is unhashable), so entries can key dicts/sets."""
        return hash((self.formula, self.name))

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form, so a run directory keeps the exact references it was matched against."""
        data = asdict(self) | {"structure": self.structure.as_dict(), "close_to": list(self.close_to)}
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Polymorph:
        values = dict(data)
        values["structure"] = Structure.from_dict(data["structure"])
        values["close_to"] = tuple(data.get("close_to", ()))
        return cls(**values)
