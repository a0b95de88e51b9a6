"""The one StructureMatcher used everywhere products and references are compared."""

from __future__ import annotations

from pymatgen.analysis.structure_matcher import StructureMatcher


def make_matcher() -> StructureMatcher:
    """pymatgen's default tolerances; volume scaling and supercells allowed, because relaxed products come
    out strained by the potential and a subcell may hold several primitive cells of a crystal."""
    return StructureMatcher(ltol=0.2, stol=0.3, angle_tol=5, primitive_cell=True, scale=True, attempt_supercell=True)
