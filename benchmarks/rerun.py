"""Run finished runs again on copies, with changed settings or code: only what the change reaches.

    python benchmarks/rerun.py amorph-runs/accuracy amorph-runs/recut --set subcells.more_if_inconclusive=120 \
        --only TiO2-seed0,TiO2-seed1
    python benchmarks/accuracy.py benchmarks/data/first_nucleating.csv --out amorph-runs/recut --seeds 0,1 --score-only

Every run folder under SRC (one with config.json; `--only` picks folder names) is copied to the same
place under DST, `--set SECTION.FIELD=VALUE` is written into its settings (VALUE read as JSON, else as
text), and the copy is resumed. Which stages run again is the stage table's answer (amorph.stages):
each stage that reads a changed setting, and each later one whose input files came out different.
`--from STAGE` runs that stage and every later one again whatever changed (new code, say), and
`--references` stage 0 as well (the known polymorphs and the subcell size limit they set; a stage
whose inputs come out the same is still skipped). What a copy keeps is the original's, so only what
ran again differs, and accuracy.py scores the copies as it scores any run. An interrupted copy is
resumed where it stopped. Prints each copy's stage times beside the original's.
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
from amorph.results.rundir import RunDir
from amorph.settings import RunSettings
from amorph.stages import STAGE_NAMES, adopt, remove_outputs, stage


def forced(stage_from: str | None, references: bool) -> list[str]:
    """The stages `--from` and `--references` make run again whatever changed."""
    names = list(STAGE_NAMES[STAGE_NAMES.index(stage_from):]) if stage_from else []
    return (["collect_references"] if references and "collect_references" not in names else []) + names


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


def copy_run(run: Path, target: Path, stage_from: str | None = None, changes: dict[tuple[str, str], Any] | None = None,
             references: bool = False, note: str | None = None) -> RunSettings:
    """A copy of the run with its settings changed and its stage records (stages.json) as the original
    ran, so that resuming it runs again only what the change reaches; returns the new settings.
    `note` goes into config.json's potential notes (say what ran under what)."""
    shutil.rmtree(target, ignore_errors=True)  # a copy begun but stopped before its config.json
    shutil.copytree(run, target, ignore=shutil.ignore_patterns(LOCK))
    config = json.loads((target / files.CONFIG).read_text())
    copy = RunDir(target)
    records = adopt(copy, RunSettings.from_dict(config["settings"]))  # a run older than stages.json: as it ran
    # the report (and its page) are made again whatever changed: report.json in a copy means the copy finished
    again = forced(stage_from, references)
    again += [name for name in ("rank_polymorphs", "draw_report") if name not in again]
    for name in again:
        remove_outputs(copy, stage(name))
    records.forget(again)
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
    parser.add_argument("--from", dest="stage", choices=STAGE_NAMES,
                        help="run this stage and every later one again, whatever changed (default: what the changes reach)")
    parser.add_argument("--references", action="store_true", help="run stage 0 again too (known polymorphs, size limit)")
    parser.add_argument("--set", dest="changes", action="append", default=[], help="SECTION.FIELD=VALUE, e.g. relax.max_steps=150")
    parser.add_argument("--only", default="", help="comma-separated run folder names (default: every run under SRC)")
    args = parser.parse_args()
    changes = parse_changes(args.changes)
    runs = run_folders(args.src, args.only)
    also = " and stage 0" if args.references else ""
    start = f"from {args.stage}{also}" if args.stage else f"where the changes reach{also}"
    print(f"{len(runs)} runs, again {start}, with {args.changes or 'no changes'}", flush=True)
    for run in runs:
        target = args.dst / run.relative_to(args.src)
        note = f"stages {start} run again by benchmarks/rerun.py, with {args.changes}"
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
