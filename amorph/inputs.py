"""Everything that can be wrong with a run's input, checked before any heavy import or any file.

A typo must be answered at once: torch, matgl and chgnet take seconds to import, and a melt-quench
minutes to run. So this module loads only the formula parser, the settings and the light checks of
the run folder, the potential's name and the `--db` sources; the potential itself is loaded later
(amorph.pipeline.prepare), where an element it does not cover is refused.
"""

from __future__ import annotations

from pathlib import Path

from amorph.composition import Formula, parse_formula
from amorph.errors import AmorphError
from amorph.matching.sources import check_sources
from amorph.md.potentials import check_potential_spec
from amorph.results import rundir as files
from amorph.results.rundir import RunDir
from amorph.settings import RunSettings, validate


def check_inputs(settings: RunSettings, out: Path, resume: bool = False) -> tuple[RunSettings, Formula]:
    """The settings to run (a resumed run's own, from its config.json) and the parsed formula;
    AmorphError, naming what is wrong, for a bad formula, number, potential name, source or folder."""
    if resume:
        RunDir.check_writable(out, resume=True)
        settings = RunSettings.from_dict(RunDir(out).read_json(files.CONFIG)["settings"])
    formula = parse_formula(settings.formula)
    validate(settings)
    check_subcell_sizes(settings, formula)
    RunDir.check_writable(out, resume)
    check_potential_spec(settings.potential)
    check_sources(settings.databases)
    return settings, formula


def check_subcell_sizes(settings: RunSettings, formula: Formula) -> None:
    """Refuse a subcell size range that holds no whole formula unit (unless any composition is kept):
    otherwise the run would find no subcell only after its melt-quench."""
    sc = settings.subcells
    unit = formula.atoms_per_formula_unit
    if sc.any_composition or any(n % unit == 0 for n in range(sc.n_min, sc.n_max + 1)):
        return
    raise AmorphError(
        f"subcells of {sc.n_min}-{sc.n_max} atoms cannot hold whole formula units of {formula.reduced} ({unit} atoms each); "
        f"use --n-max {unit * max(1, -(-sc.n_min // unit))} or more"
    )
