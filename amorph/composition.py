"""Chemical formula handling: parsing, system size and the volume of the starting cell."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

from ase.data import covalent_radii
from pymatgen.core import Composition, Element

from amorph.errors import AmorphError
from amorph.settings import MAX_ATOMS  # the most atoms a run may have (also --atoms); more in one formula unit cannot run

# Fraction of space filled by touching spheres in a dense random packing. Used only when no
# crystal of the formula is known, to turn atomic radii into a volume estimate.
RANDOM_PACKING_FRACTION = 0.64


@dataclass(frozen=True)
class Formula:
    """A validated chemical formula and its reduced form."""

    text: str
    composition: Composition  # reduced composition, integer amounts

    @property
    def reduced(self) -> str:
        return self.composition.reduced_formula

    @property
    def display(self) -> str:
        """The formula as the user wrote it when that is the reduced formula in another order (MoSi2, which
        pymatgen writes Si2Mo); otherwise the reduced formula. For messages and pages only: files, keys and
        lookups use `reduced`."""
        written = self.text.strip()
        try:
            same = written.isascii() and written.isalnum() and Composition(written) == self.composition
        except Exception:  # pymatgen raises several types for text it cannot read
            same = False
        return written if same else self.reduced

    @property
    def atoms_per_formula_unit(self) -> int:
        return int(round(self.composition.num_atoms))

    @property
    def elements(self) -> list[str]:
        return sorted(el.symbol for el in self.composition.elements)




def shown(text: str, limit: int = 60) -> str:
    """The user's text as an error line quotes it: on one line (control characters escaped) and short."""
    quoted = f"'{text}'" if text.isprintable() else repr(text)
    return quoted if len(quoted) <= limit else quoted[: limit - 5] + "...'"


SUBSCRIPTS = str.maketrans("₀₁₂₃₄₅₆₇₈₉", "0123456789")  # TiO₂ as pasted from a paper
ADDUCT_DOTS = "·•∙⋅*"  # CuSO4·5H2O: a hydrate or adduct, one formula plus whole multiples of others


def parse_formula(text: str) -> Formula:
    """Parse a formula such as 'TiO2', 'Ca(OH)2', 'TiO₂' or 'CuSO4·5H2O' (read as CuSO9H10); raise
    AmorphError for anything that is not a real compound."""
    cleaned = text.strip().translate(SUBSCRIPTS)
    if not cleaned or not any(ch.isalpha() for ch in cleaned):
        raise AmorphError(f"{shown(text)} is not a chemical formula")
    if re.search(r"\d[eE][+-]?\d", cleaned):  # pymatgen would read Cu1e3 as Cu1000
        raise AmorphError(f"{shown(text)} is not a chemical formula: amounts are whole numbers, not powers of ten")
    # pymatgen reads "Ti0O2" as O2, silently dropping the element: a zero amount is a typo
    for symbol, amount in re.findall(r"([A-Z][a-z]*|[)\]])(\d+(?:\.\d*)?)", cleaned):
        what = "a group" if symbol in ")]" else symbol  # Ca(OH)0
        if float(amount) == 0:
            raise AmorphError(f"{shown(text)} gives {what} an amount of zero; leave it out or give a whole number of atoms")
        if float(amount) > MAX_ATOMS:
            raise AmorphError(f"{shown(text)} asks for more than {MAX_ATOMS} atoms of {what} in one formula unit")
    try:
        comp = _composition(cleaned)
    except (ValueError, KeyError, OverflowError):  # pymatgen's message repeats the text, unescaped
        raise AmorphError(f"{shown(text)} is not a chemical formula") from None
    if comp.num_atoms <= 0:
        raise AmorphError(f"{shown(text)} is not a chemical formula")
    for el in comp.elements:
        if not isinstance(el, Element) or el.Z > 103:
            raise AmorphError(f"{shown(text)} is not a chemical formula: unknown element {getattr(el, 'symbol', el)}")
    if any(abs(amt - round(amt)) > 1e-6 for amt in comp.values()):
        hint = " (a hydrate is written with '·': CuSO4·5H2O)" if "." in cleaned else ""
        raise AmorphError(f"{shown(text)} has fractional amounts; give whole numbers of atoms{hint}")
    if comp.num_atoms > MAX_ATOMS:
        raise AmorphError(f"{shown(text)} has more than {MAX_ATOMS} atoms in one formula unit")
    reduced, _ = comp.get_reduced_composition_and_factor()
    return Formula(text=cleaned, composition=reduced)


def _composition(cleaned: str) -> Composition:
    """pymatgen's reading of the formula, with adducts (A·nB) summed part by part, which it does not
    do. A fractional multiple (Na2CO3·1.5H2O) scales the whole to the smallest whole formula."""
    parts = re.split(f"[{re.escape(ADDUCT_DOTS)}]", cleaned)
    total = Composition()
    fractional = False
    for k, part in enumerate(parts):
        count, rest = re.fullmatch(r"\s*([0-9]+(?:\.[0-9]+)?)?\s*(.*?)\s*", part, flags=re.DOTALL).groups()  # type: ignore[union-attr]
        if k == 0 and count or not rest:  # "2TiO2" or "TiO2·": not a formula
            raise ValueError(part)
        if count is not None and float(count) == 0:
            raise AmorphError(f"{shown(cleaned)} adds zero of {rest}; leave it out or give a whole number")
        multiple = float(count) if count is not None else 1.0
        fractional |= not multiple.is_integer()
        total += Composition(rest) * multiple
    if fractional:
        for scale in range(2, 13):  # hemi- (x2), sesqui- (x2), third-hydrates (x3), ...
            if all(abs(scale * amount - round(scale * amount)) < 1e-6 for amount in total.values()):
                return total * scale
    return total


def number_of_atoms(formula: Formula, target: int) -> int:
    """Whole multiple of the reduced formula closest to the target size (at least one formula unit)."""
    per_unit = formula.atoms_per_formula_unit
    units = max(1, round(target / per_unit))
    return units * per_unit


def volume_per_atom_from_radii(formula: Formula) -> float:
    """Estimate a condensed-phase volume per atom (A^3) from atomic radii.

    Used only when no crystal of the formula is known: spheres of each element's covalent
    radius filling RANDOM_PACKING_FRACTION of space (TiO2: 10.2 A^3/atom vs 10.4 in rutile;
    open networks such as diamond Si come out too dense, by about 2x).
    """
    comp = formula.composition
    sphere_volume = 0.0
    for el, amount in comp.items():
        radius = covalent_radii[el.Z]
        sphere_volume += amount * 4.0 / 3.0 * math.pi * float(radius) ** 3
    return sphere_volume / comp.num_atoms / RANDOM_PACKING_FRACTION
