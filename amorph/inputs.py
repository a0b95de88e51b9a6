"""Everything that can be wrong with a run's input, checked before any heavy import or any file.

A typo must be answered at once: torch, matgl and chgnet take seconds to import, and a melt-quench
minutes to run. So this module loads only the formula parser, the settings and the light checks of
the run folder, the potential's name and the `--db` sources; the potential itself is loaded later
(amorph.pipeline.prepare), where an element it does not cover is refused.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from amorph.composition import Formula, parse_formula
from amorph.errors import AmorphError
from amorph.matching.sources import check_sources
from amorph.md.potentials import check_potential_spec
from amorph.results import rundir as files
from amorph.results.lock import check_unlocked
from amorph.results.rundir import RunDir
from amorph.settings import RunSettings, differences, validate


def check_inputs(settings: RunSettings | None, out: Path, resume: bool = False, restart: bool = False) -> tuple[RunSettings, Formula]:
    """The settings to run and the parsed formula; AmorphError, naming what is wrong, for a bad
    formula, number, potential name, source or folder.

    resume: the run in `out` goes on with the settings of its config.json. `settings` None takes
    them as they are (`amorph resume DIR`); given settings must match them, or the answer would be
    the earlier run's under settings it never ran (`--resume` with another --seed, say).
    restart: `out` may hold an earlier run (its config.json), which prepare() then removes."""
    if resume:
        RunDir.check_writable(out, resume=True)
        recorded = RunSettings.from_dict(RunDir(out).read_json(files.CONFIG)["settings"])
        if settings is not None:
            check_same_settings(recorded, settings, out)
        settings = recorded
    if settings is None:
        raise AmorphError("no settings to run: give a formula, or resume a run folder")
    formula = parse_formula(settings.formula)
    validate(settings)
    check_subcell_sizes(settings, formula)
    if restart:
        RunDir.check_restartable(out)
    else:
        RunDir.check_writable(out, resume)
    if Path(out).is_dir():
        check_unlocked(out)  # a live run there: resuming or restarting it would write beside it
    check_potential_spec(settings.potential)
    check_sources(settings.databases)
    return settings, formula


def changed_settings(recorded: RunSettings, given: RunSettings) -> list[str]:
    """The settings that differ from a run's own, as "--seed 0 -> 5"; one formula written two ways
    ("TiO2 ", "O2Ti") is no difference."""
    if parse_formula(given.formula).reduced == parse_formula(recorded.formula).reduced:
        given = replace(given, formula=recorded.formula)
    return differences(recorded, given)


def check_same_settings(recorded: RunSettings, given: RunSettings, out: Path) -> None:
    """Refuse to resume a run under settings other than its own, naming each that differs."""
    changed = changed_settings(recorded, given)
    if changed:
        raise AmorphError(
            f"--resume: {out} was run with other settings ({'; '.join(changed)}); give its own flags, "
            f"or `amorph resume {out}`, or --restart to start it over"
        )


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
