"""Accuracy against experiment: run `amorph predict` on every benchmark row and score every rule.

    python benchmarks/accuracy.py benchmarks/data/first_nucleating.csv --preset quick --potential chgnet --seeds 0,1,2

Each (formula, seed) runs in its own folder under --out; a finished run (report.json present) is not
run again, and a stopped one is resumed, so the command can be repeated until the table is complete.
The table gives, per row and seed, the expected polymorph, how many valid subcells became it
("seen": 0 marks a miss before the rule, not of it), what each rule names (with its share, 95%
interval and P: the share of bootstrap resamples on which the rule names it, "?" when below 0.8, an
inconclusive answer), the row's confidence and the wall time; then each rule's hits on the
high-confidence rows, beside the "predict the ground state" baseline, and the same split in two: the
metastable-first rows (`expected` is not the `ground_state`, the rows that test the method's claim)
and the ground-state-first rows, with the conclusive answers on the metastable-first rows and how
many of them were right. How a row is scored: benchmarks/data/README.md.
The last line is `accuracy: <hits>/<high rows> (<rule>)` for --rule.
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from amorph.matching.rules import RULES
from amorph.results.report import REPORTED_RULES
from amorph.settings import DEFAULT_RULE

WALL_TIMES = "wall_times.json"


@dataclass(frozen=True)
class Row:
    """One benchmark system: what experiment sees first, and what counts as right."""

    formula: str
    expected: str
    spacegroups: frozenset[int]  # expected and accepted alternatives together
    name_must_contain: str
    ground_state: str
    confidence: str

    @classmethod
    def from_csv(cls, row: dict[str, str]) -> Row:
        groups = {int(g) for field in ("spacegroups", "alt_spacegroups") for g in row.get(field, "").split("|") if g.strip()}
        return cls(
            row["formula"], row["expected"], frozenset(groups), row.get("name_must_contain", ""), row["ground_state"], row["confidence"]
        )

    @property
    def metastable_first(self) -> bool:
        """Whether experiment sees another polymorph first than the ground state: `expected` and
        `ground_state` name different polymorphs. They name the same one when the words of the shorter
        (case ignored) begin the longer: "alpha (orthorhombic)" and "alpha" (V2O5), "monoclinic
        gamma-WO3" and "monoclinic" (WO3). A row with either field empty counts as ground-state-first."""
        first, stable = _words(self.expected), _words(self.ground_state)
        if not first or not stable:
            return False
        shorter, longer = sorted((first, stable), key=len)
        return longer[: len(shorter)] != shorter

    def is_right(self, named: dict[str, Any] | None) -> bool:
        """A known polymorph of an accepted space group (and name, where the row needs one)."""
        if not named or named.get("polymorph") is None or not named.get("known", True):
            return False
        if named["spacegroup_number"] not in self.spacegroups:
            return False
        return self.name_must_contain.lower() in named["polymorph"].lower()


def _words(name: str) -> list[str]:
    """A polymorph name as lowercase words ("C54 (TiSi2-type, Fddd)" -> c54, tisi2-type, fddd)."""
    return re.findall(r"[a-z0-9-]+", name.lower())


def expected_count(row: Row, report: dict[str, Any] | None) -> int | None:
    """How many valid subcells became the expected polymorph (or an accepted alternative); None for a
    run with no report. 0 tells a miss before the rule (it never formed: sampling, the subcell sizes,
    the cell's room or the matching) from a miss of the rule (it formed, another was named)."""
    if report is None:
        return None
    return sum(p["count"] for p in report.get("polymorphs", []) if row.is_right({**p, "polymorph": p["name"]}))


def read_rows(path: Path) -> list[Row]:
    with open(path, newline="") as handle:
        return [Row.from_csv(r) for r in csv.DictReader(handle)]


def ground_state_named(run: Path) -> dict[str, Any] | None:
    """The baseline's answer: the known polymorph the run's references mark as the ground state."""
    known = run / "known_polymorphs.json"
    if not known.is_file():
        return None
    for p in json.loads(known.read_text())["polymorphs"]:
        if p.get("ground_state"):
            return {"polymorph": p["name"], "known": True, "spacegroup_number": p["spacegroup_number"]}
    return None


def run_one(amorph: str, row: Row, seed: int, args: argparse.Namespace, folder: Path, walls: dict[str, float]) -> str:
    """Run (or resume) one prediction; '' when report.json is there, else the error line."""
    if (folder / "report.json").is_file():
        return ""
    command = [amorph, "predict", row.formula, "--preset", args.preset, "--potential", args.potential, "--seed", str(seed),
               "--out", str(folder), "--quiet", *args.extra]
    if (folder / "config.json").is_file():
        command.append("--resume")
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    walls[folder.name] = walls.get(folder.name, 0.0) + time.perf_counter() - started
    if done.returncode != 0:
        return (done.stderr.strip().splitlines() or [f"exit {done.returncode}"])[-1]
    return ""


def provenance_of(config: dict[str, Any]) -> tuple[str, str, str]:
    """What made a run, from its config.json: amorph's commit, the potential and its version, the machine
    (older runs recorded no commit)."""
    versions, potential, machine = config.get("versions", {}), config.get("potential", {}), config.get("machine", {})
    commit = versions.get("amorph_commit", f"amorph {versions.get('amorph', '?')}, commit not recorded")
    model = f"{potential.get('used', '?')} ({potential.get('version', '?')})"
    where = f"{machine.get('processor', '?')} {machine.get('platform', '?')}" + (f", {machine['gpu']}" if machine.get("gpu") else "")
    return commit, model, where


def cell(named: dict[str, Any] | None, right: bool) -> str:
    if not named or named.get("polymorph") is None:
        return "-"
    low, high = named.get("share_ci95", [None, None])
    share = f" {100 * named['share']:.0f}% [{100 * low:.0f}-{100 * high:.0f}]" if "share" in named and low is not None else ""
    sure = f" P{named['probability']:.2f}" + ("" if named.get("conclusive") else "?") if "probability" in named else ""
    return f"{'+' if right else ' '}{named['polymorph']}{share}{sure}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--potential", default="chgnet")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--out", type=Path, default=Path("amorph-runs/accuracy"))
    parser.add_argument("--rule", default=DEFAULT_RULE, choices=list(RULES))
    parser.add_argument("--only", default="", help="comma-separated formulas to run (default: every row)")
    parser.add_argument("--score-only", action="store_true", help="score the runs already in --out; start none")
    parser.add_argument("--markdown", action="store_true", help="end with the hits per rule as a Markdown table (docs/accuracy.md)")
    # everything after `--` goes to `amorph predict` as it is (argparse's own "--" handling drops
    # option-like words that follow a positional argument, so the split is done here)
    argv = sys.argv[1:]
    split = argv.index("--") if "--" in argv else len(argv)
    args = parser.parse_args(argv[:split])
    args.extra = argv[split + 1 :]
    amorph = shutil.which("amorph") or str(Path(sys.executable).with_name("amorph"))
    rows = read_rows(args.csv)
    if args.only:
        rows = [r for r in rows if r.formula in set(args.only.split(","))]
    seeds = [int(s) for s in args.seeds.split(",")]
    base = args.out / f"{args.preset}-{args.potential.replace(':', '_').replace('/', '_')}"
    base.mkdir(parents=True, exist_ok=True)
    walls_file = base / WALL_TIMES
    walls: dict[str, float] = json.loads(walls_file.read_text()) if walls_file.is_file() else {}
    rules = [*REPORTED_RULES, "ground-state"]
    hits = {rule: 0 for rule in rules}
    conclusive = {rule: [0, 0] for rule in REPORTED_RULES}  # [conclusive answers, of them right] on high rows
    # the same, split by whether the row's first polymorph is the ground state (metastable-first: True)
    split_runs = {True: 0, False: 0}
    split_hits = {first: {rule: 0 for rule in rules} for first in (True, False)}
    split_conclusive = {rule: [0, 0] for rule in REPORTED_RULES}  # on metastable-first high rows
    made_by: list[tuple[str, str, str]] = []  # each scored run's (commit, potential, machine), for --markdown
    high_runs, formed = 0, [0, 0]  # high runs where the expected polymorph formed, and of them right by --rule
    print(f"{'formula':8s} {'seed':>4s} {'conf':6s} {'expected':24s} {'seen':>4s} " + " ".join(f"{r:36s}" for r in rules) + "   wall")
    for row in rows:
        for seed in seeds:
            folder = base / f"{row.formula}-seed{seed}"
            if args.score_only and not folder.is_dir():  # a row and seed never run is not scored, neither as a miss nor as a baseline hit
                continue
            error = "" if args.score_only else run_one(amorph, row, seed, args, folder, walls)
            if not args.score_only and folder.name in walls:  # merged with what other processes wrote meanwhile
                merged = json.loads(walls_file.read_text()) if walls_file.is_file() else {}
                merged[folder.name] = walls[folder.name]
                walls = merged
                walls_file.write_text(json.dumps(walls, indent=1))
            report = json.loads((folder / "report.json").read_text()) if (folder / "report.json").is_file() else None
            if report is not None and (folder / "config.json").is_file():
                made_by.append(provenance_of(json.loads((folder / "config.json").read_text())))
            answers = dict((report or {}).get("predictions", {}))
            answers["ground-state"] = ground_state_named(folder)
            right = {rule: row.is_right(answers.get(rule)) for rule in rules}
            seen = expected_count(row, report)
            if row.confidence == "high":
                high_runs += 1
                split_runs[row.metastable_first] += 1
                formed[0] += bool(seen)
                formed[1] += bool(seen) and right[args.rule]
                for rule in rules:
                    hits[rule] += right[rule]
                    split_hits[row.metastable_first][rule] += right[rule]
                for rule in REPORTED_RULES:
                    if (answers.get(rule) or {}).get("conclusive"):
                        conclusive[rule][0] += 1
                        conclusive[rule][1] += right[rule]
                        if row.metastable_first:
                            split_conclusive[rule][0] += 1
                            split_conclusive[rule][1] += right[rule]
            cells = " ".join(f"{cell(answers.get(rule), right[rule])[:36]:36s}" for rule in rules)
            wall = walls.get(folder.name)
            wall_text = f"{wall:6.0f} s" if wall is not None else "     -"
            seen_text = "-" if seen is None else str(seen)
            print(f"{row.formula:8s} {seed:4d} {row.confidence:6s} {row.expected[:24]:24s} {seen_text:>4s} {cells} {wall_text}", flush=True)
            if error:
                print(f"         error: {error[:150]}", flush=True)
    print(f"high-confidence runs: {high_runs} (rows x seeds); hits by rule: "
          + ", ".join(f"{rule} {hits[rule]}/{high_runs}" for rule in rules))
    print("conclusive answers on high rows, and how many right (target: >= 80%): " + ", ".join(
        f"{rule} {right}/{called}" + (f" ({100 * right / called:.0f}%)" if called else "") for rule, (called, right) in conclusive.items()))
    metastable = [r for r in rows if r.metastable_first]
    print("metastable-first rows (expected is not the ground state): " + "; ".join(
        f"{', '.join(r.formula for r in metastable if r.confidence == level) or 'none'} ({level})" for level in ("high", "medium")))
    for first, label in ((True, "metastable-first"), (False, "ground-state-first")):
        print(f"{label} high rows ({split_runs[first]} runs): "
              + ", ".join(f"{rule} {split_hits[first][rule]}/{split_runs[first]}" for rule in rules))
    print("conclusive answers on metastable-first high rows, and how many right: " + ", ".join(
        f"{rule} {right}/{called}" + (f" ({100 * right / called:.0f}%)" if called else "") for rule, (called, right) in split_conclusive.items()))
    print(f"the expected polymorph formed in at least one subcell on {formed[0]}/{high_runs} high runs; "
          f"{args.rule} named it on {formed[1]}/{formed[0]} of those")
    print(f"accuracy: {hits[args.rule]}/{high_runs} ({args.rule})")
    if args.markdown:  # the table docs/accuracy.md shows, as this run scores it
        for what, values in zip(("amorph commit", "potential", "machine"), zip(*made_by, strict=True) if made_by else ((), (), ())):
            counts = ", ".join(f"{v} ({n} runs)" for v, n in sorted(Counter(values).items()))
            print(f"{what}: {counts or 'no runs'}")
        print(f"\n| rule | metastable-first ({split_runs[True]} runs) | ground-state-first ({split_runs[False]} runs) "
              f"| all high ({high_runs} runs) | conclusive answers right |\n|---|---|---|---|---|")
        for rule in rules:
            called, right = conclusive.get(rule, (0, 0))
            sure = f"{right}/{called}" if rule in conclusive else "-"
            name = f"{rule} (the default)" if rule == args.rule else ("baseline: name the ground state" if rule == "ground-state" else rule)
            print(f"| {name} | {split_hits[True][rule]} | {split_hits[False][rule]} | {hits[rule]} | {sure} |")


if __name__ == "__main__":
    main()
