"""Run the later stages of finished runs again on copies, with changed settings or code.

    python benchmarks/rerun.py amorph-runs/accuracy amorph-runs/recut --from cut_subcells --references \
        --set subcells.more_if_inconclusive=120 --only TiO2-seed0,TiO2-seed1
    python benchmarks/accuracy.py benchmarks/data/first_nucleating.csv --out amorph-runs/recut --seeds 0,1 --score-only

Every run folder under SRC (one with config.json; `--only` picks folder names) is copied to the same
place under DST without the files of the stage `--from` and of every later stage
(amorph.results.rundir.STAGE_FILES), with `--set SECTION.FIELD=VALUE` written into its settings
(VALUE read as JSON, else as text), and resumed there. `--references` also runs stage 0 again (the
known polymorphs and the subcell size limit they set) while keeping the start structure and the
melt-quench. What the copy keeps is the original's, so only what the later stages do differs, and
accuracy.py scores the copies as it scores any run. An interrupted copy is resumed where it stopped.
Prints each copy's stage times beside the original's.
"""

from __future__ import annotations

import argparse
import json
import shutil
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from amorph.pipeline import predict
from amorph.results import rundir as files
from amorph.results.lock import LOCK
from amorph.settings import RunSettings

STAGES = tuple(files.STAGE_FILES)


# the first stage that reads each settings section: a change to it means running that stage again
READ_FIRST_BY = {"packing": "build_start_structure", "melt_quench": "run_melt_quench", "subcells": "cut_subcells",
                 "relax": "crystallize_subcells"}
READ_LATER = {("subcells", "more_if_inconclusive"): "crystallize_subcells"}  # caps the reserve cut earlier


def files_from(stage: str, references: bool = False) -> list[str]:
    """The files a copy leaves out to run `stage` and every later one again (and stage 0, with
    references); a run's lock is never copied."""
    if stage not in files.STAGE_FILES:
        raise SystemExit(f"--from must be one of {', '.join(STAGES)}, got '{stage}'")
    later = STAGES[STAGES.index(stage):]
    left_out = [name for s in later for name in files.STAGE_FILES[s]]
    return left_out + (list(files.STAGE_FILES["collect_references"]) if references else []) + [LOCK]


def check_changes(stage: str, changes: dict[tuple[str, str], Any], references: bool) -> None:
    """Refuse a change that the stages kept have already used (the copy would not be what it says)."""
    start = STAGES.index(stage)
    for (section, name) in changes:
        reader = READ_LATER.get((section, name), READ_FIRST_BY.get(section))
        if reader is not None and STAGES.index(reader) < start:
            raise SystemExit(f"--set {section}.{name} is read by {reader}, before --from {stage}: start from {reader}")
    if references and start > STAGES.index("cut_subcells"):
        raise SystemExit(f"--references sets the subcell size limit, which the kept cut already used: use --from cut_subcells, not {stage}")


def parse_changes(items: Iterable[str]) -> dict[tuple[str, str], Any]:
    """--set SECTION.FIELD=VALUE pairs as {(section, field): value}; a top-level setting has section ''."""
    changes = {}
    for item in items:
        key, sep, text = item.partition("=")
        if not sep:
            raise SystemExit(f"--set takes SECTION.FIELD=VALUE, got '{item}'")
        section, _, name = key.rpartition(".")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            value = text
        changes[(section, name)] = value
    return changes


def copy_run(run: Path, target: Path, stage: str, changes: dict[tuple[str, str], Any] | None = None,
             references: bool = False, note: str | None = None) -> RunSettings:
    """The run without `stage`'s files and later ones, its settings changed; returns the new settings.
    `note` goes into config.json's potential notes (say what ran under what)."""
    check_changes(stage, changes or {}, references)
    shutil.rmtree(target, ignore_errors=True)  # a copy begun but stopped before its config.json
    shutil.copytree(run, target, ignore=shutil.ignore_patterns(*files_from(stage, references)))
    config = json.loads((target / files.CONFIG).read_text())
    defaults = RunSettings(formula=config["settings"]["formula"]).to_dict()  # settings newer than the run are allowed
    for (section, name), value in (changes or {}).items():
        where = config["settings"][section] if section else config["settings"]
        if name not in where and name not in (defaults[section] if section else defaults):
            raise SystemExit(f"no setting '{section + '.' if section else ''}{name}' in {run / files.CONFIG}")
        where[name] = value
    if note:
        config["potential"]["notes"] = [*config["potential"].get("notes", []), note]
    (target / files.CONFIG).write_text(json.dumps(config, indent=2))
    return RunSettings.from_dict(config["settings"])


def run_folders(src: Path, only: str) -> list[Path]:
    """Run folders under src (those with config.json), in --only's order when given."""
    runs = sorted(p.parent for p in src.rglob(files.CONFIG))
    if not only:
        return runs
    wanted = only.split(",")
    return sorted((r for r in runs if r.name in wanted), key=lambda r: wanted.index(r.name))


def resume_copy(run: Path, target: Path, make_copy: Callable[[], RunSettings]) -> dict[str, Any]:
    """Finish the copy of `run` at `target` (made by make_copy() unless begun already); its report."""
    if not (target / files.REPORT).is_file():
        if not (target / files.CONFIG).is_file():
            settings = make_copy()
        else:  # an interrupted copy: resume it where it stopped
            settings = RunSettings.from_dict(json.loads((target / files.CONFIG).read_text())["settings"])
        predict(settings, target, resume=True)
    return json.loads((target / files.REPORT).read_text())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--from", dest="stage", required=True, choices=STAGES, help="the first stage to run again")
    parser.add_argument("--references", action="store_true", help="run stage 0 again too (known polymorphs, size limit)")
    parser.add_argument("--set", dest="changes", action="append", default=[], help="SECTION.FIELD=VALUE, e.g. relax.max_steps=150")
    parser.add_argument("--only", default="", help="comma-separated run folder names (default: every run under SRC)")
    args = parser.parse_args()
    changes = parse_changes(args.changes)
    runs = run_folders(args.src, args.only)
    also = " (and stage 0)" if args.references else ""
    print(f"{len(runs)} runs from {args.stage}{also}, with {args.changes or 'no changes'}", flush=True)
    for run in runs:
        target = args.dst / run.relative_to(args.src)
        note = f"stages from {args.stage}{' and stage 0' if args.references else ''} run again by benchmarks/rerun.py, with {args.changes}"
        after = resume_copy(run, target, lambda: copy_run(run, target, args.stage, changes, args.references, note))  # noqa: B023
        before = json.loads((run / files.REPORT).read_text()) if (run / files.REPORT).is_file() else {}
        times = " ".join(
            f"{stage} {before.get('timings', {}).get(stage, float('nan')):.0f} -> {after.get('timings', {}).get(stage, float('nan')):.0f} s"
            for stage in ("cut_subcells", "crystallize_subcells", "identify_products") if stage in after.get("timings", {})
        )
        answer = after.get("prediction") or {}
        print(f"{run.relative_to(args.src)}: {answer.get('polymorph')} P {answer.get('probability')}; "
              f"{after['n_subcells']} subcells; {times}", flush=True)


if __name__ == "__main__":
    main()
