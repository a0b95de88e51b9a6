"""The one StructureMatcher used everywhere products and references are compared."""

from __future__ import annotations

from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Structure

from amorph.settings import MatchingSettings


def make_matcher(tolerances: MatchingSettings | None = None) -> StructureMatcher:
    """A run's tolerances (pymatgen's defaults unless set: amorph.settings.MatchingSettings); volume
    scaling and supercells allowed, because relaxed products come out strained by the potential and a
    subcell may hold several primitive cells of a crystal."""
    t = tolerances or MatchingSettings()
    return StructureMatcher(ltol=t.ltol, stol=t.stol, angle_tol=t.angle_tol, primitive_cell=True, scale=True, attempt_supercell=True)


def reduced_for_matching(matcher: StructureMatcher, structure: Structure) -> Structure:
    """The structure as `matcher.fit` reduces it before matching (Niggli cell, then primitive cell).

    `matcher.fit(reduced_for_matching(matcher, a), reduced_for_matching(matcher, b),
    skip_structure_reduction=True)` gives `matcher.fit(a, b)`'s answer while each structure is reduced
    once, not at every fit: fit reduces both structures at every call, and even a hit in pymatgen's
    cache of reductions compares the structures site by site. This is exactly what pymatgen's own
    `StructureMatcher.group_structures` does, with the same two private methods in the same order as
    `fit` (`_process_species`, then `_preprocess` -> `_get_reduced_structure(s, primitive_cell,
    niggli=True)`); pymatgen has no public method for it. tests/test_matching.py checks the answers
    against plain `fit`.
    """
    [processed] = matcher._process_species([structure])
    return matcher._get_reduced_structure(processed, matcher._primitive_cell, niggli=True)
