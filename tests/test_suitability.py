"""Chemistry the a2c method does not suit is warned about before the melt-quench, by element class and
by the bonding of the known ground state, never by formula."""

from __future__ import annotations

import pytest

from amorph.composition import parse_formula
from amorph.matching.database import known_polymorphs
from amorph.suitability import suitability_warnings


@pytest.mark.parametrize(
    "formula, dispersion, needle",
    [
        ("Xe", False, "noble gas Xe"),
        ("Xe", True, "noble gas Xe"),  # dispersion does not make a 2000 K melt of a noble gas sensible
        ("H2O", False, "whose solids are molecular (H, O)"),
        ("MoS2", False, "made of layers held together by van der Waals forces"),
        ("C", False, "add +d3"),
        ("MoS2", True, None),
        ("TiO2", False, None),
        ("NaCl", False, None),
        ("Ni", False, None),
    ],
)
def test_warnings_name_the_reason(formula, dispersion, needle):
    lines = suitability_warnings(parse_formula(formula), known_polymorphs(formula), dispersion, 2000.0)
    if needle is None:
        assert lines == []
    else:
        assert len(lines) == 1 and needle in lines[0]
