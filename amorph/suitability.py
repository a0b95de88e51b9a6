"""Warnings, before the melt-quench, for chemistry the a2c method does not suit.

The method melts a cell at T_high, quenches it and relaxes subcells under a universal potential. It
assumes a solid held together by chemical bonds that the potential describes. Three kinds of input
break that, and none of them stops a run: the user may know better, but the run says why its answer
deserves less trust. The rules look at element classes and at the bonding of the known ground state,
never at a particular formula.
"""

from __future__ import annotations

from collections.abc import Sequence

from ase.geometry.dimensionality import isolate_components
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.composition import Formula
from amorph.matching.polymorph import Polymorph

NOBLE_GASES = frozenset({"He", "Ne", "Ar", "Kr", "Xe", "Rn"})
# elements whose solids, alone or together, are molecular (H2, N2, O2, F2, Cl2, Br2, I2, H2O, NH3, HF, ...):
# molecules held to each other by dispersion and hydrogen bonds, not by the bonds a melt-quench breaks
MOLECULAR_ELEMENTS = NOBLE_GASES | {"H", "N", "O", "F", "Cl", "Br", "I"}


def suitability_warnings(formula: Formula, references: Sequence[Polymorph], dispersion: bool, t_high: float) -> list[str]:
    """One line per reason the method may not suit this formula (empty when none applies)."""
    elements = set(formula.elements)
    lines = []
    noble = sorted(elements & NOBLE_GASES)
    if noble:
        lines.append(f"{formula.display} contains the noble gas {', '.join(noble)}: its solid is held by dispersion alone "
                     f"and melts below 170 K at ambient pressure, so a melt at {t_high:.0f} K in a fixed cell is a hot, dense "
                     "gas, not a liquid near its freezing point; the a2c method is not meant for it")
    elif elements <= MOLECULAR_ELEMENTS:
        lines.append(f"{formula.display} is made only of elements whose solids are molecular ({', '.join(sorted(elements))}): "
                     f"molecules held together by dispersion or hydrogen bonds; the {t_high:.0f} K melt breaks bonds that "
                     "crystallization of such a solid never breaks; the a2c method is not meant for it")
    ground = next((p for p in references if p.ground_state), None)
    if ground is not None and not dispersion:
        kinds = bonded_components(ground)
        if kinds and kinds <= {"0D", "1D", "2D"}:
            what = {"0D": "molecules", "1D": "chains", "2D": "layers"}
            parts = " and ".join(what[k] for k in sorted(kinds))
            lines.append(f"the ground state {ground.name} is made of {parts} held together by van der Waals forces, and the "
                         "potential has no dispersion term: add +d3 to --potential (e.g. chgnet+d3) so that the stacking is bound")
    return lines


def bonded_components(polymorph: Polymorph) -> set[str]:
    """The kinds of bonded component ("0D" molecules, "1D" chains, "2D" layers, "3D") of a structure, by
    ASE's dimensionality analysis at its default bond criterion; empty where the analysis fails."""
    try:
        return set(isolate_components(AseAtomsAdaptor.get_atoms(polymorph.structure)))
    except (AssertionError, ValueError, ArithmeticError):
        return set()
