"""What `--max-subcells auto` would have done: replay a stopping rule on finished runs' subcells.

    python benchmarks/adaptive_replay.py benchmarks/data/first_nucleating.csv amorph-runs/accuracy/quick-chgnet --seeds 0,1,2

Each finished run's subcells are taken in the order they were relaxed (subcells.csv), in rounds of
the size the pipeline uses (amorph.sampling.ADAPTIVE_ROUNDS, ADAPTIVE_MIN_ROUND), and after each
round every stopping rule is asked whether to stop:
- `separation`: the commonest known polymorph ahead of the runner-up at 95% (the rule of
  `--max-subcells auto` up to this version);
- `P>=t`: the run's prediction rule names one product on at least a share t of the bootstrap
  resamples (amorph.matching.rules.rule_probabilities, the same P the report gives).
No rule stops before two rounds, as in the pipeline. A relaxation does not depend on which other
subcells are relaxed beside it (to rounding: a fresh TiO2 run named all 120 subcells as a copy
relaxed in other batches did, energies within 5 meV/atom), so a prefix of a finished run is what a
run that stopped there would have relaxed; the products are named as the finished run named them. Prints, per run and
stopping rule, the subcells relaxed and the answer there, then totals: subcells relaxed, high rows
right, conclusive answers right.
"""

from __future__ import annotations

import argparse
import csv
import json
from collections.abc import Callable
from pathlib import Path

import numpy as np
from accuracy import Row, read_rows  # benchmarks/accuracy.py: this script runs from benchmarks/, as that one does

from amorph.matching.polymorph import Polymorph
from amorph.matching.rules import judged
from amorph.matching.statistics import separation
from amorph.results.provenance import measured_on
from amorph.results.subcells import SubcellRecord, outcomes_of, read_records
from amorph.sampling import ADAPTIVE_MIN_ROUND, ADAPTIVE_ROUNDS
from amorph.settings import DEFAULT_RULE

Stop = Callable[[list[SubcellRecord], list[Polymorph], np.random.Generator], bool]


def answer(valid: list[SubcellRecord], references: list[Polymorph], rule: str, rng: np.random.Generator) -> dict | None:
    """The rule's answer on these subcells, as report.json's predictions give it (the parts scored)."""
    replicas = [r.replica for r in valid]
    named, p, conclusive, _ = judged(outcomes_of(valid, references), replicas, rule, rng,  # type: ignore[arg-type]
                                     n_replicas=len(set(replicas)))
    if named is None:
        return None
    return {"polymorph": named.name, "known": named.known, "spacegroup_number": named.spacegroup_number,
            "probability": p, "conclusive": conclusive}


def load_run(run: Path) -> tuple[list[SubcellRecord], list[Polymorph]]:
    """A finished run's subcells, in the order they were relaxed, and the known polymorphs it matched against."""
    with open(run / "subcells.csv", newline="") as handle:
        records = read_records(list(csv.DictReader(handle)), str(run / "subcells.csv"))
    references = [Polymorph.from_dict(d) for d in json.loads((run / "known_polymorphs.json").read_text())["polymorphs"]]
    return records, references


def stop_on_separation(valid: list[SubcellRecord], references: list[Polymorph], rng: np.random.Generator) -> bool:
    known = {p.name for p in references}
    labels = [r.match if r.known_polymorph else "unknown" for r in valid]
    return separation(labels, known, [r.replica for r in valid], rng).separated


def stop_on_probability(threshold: float, rule: str) -> Stop:
    def stop(valid: list[SubcellRecord], references: list[Polymorph], rng: np.random.Generator) -> bool:
        named = answer(valid, references, rule, rng)
        return named is not None and named["probability"] >= threshold
    return stop


def replay(records: list[SubcellRecord], references: list[Polymorph], stop: Stop, seed: int) -> int:
    """How many subcells a run stopping by `stop` would have relaxed."""
    size = max(ADAPTIVE_MIN_ROUND, len(records) // ADAPTIVE_ROUNDS)
    rng = np.random.default_rng(seed)
    for end in range(size, len(records), size):
        valid = [r for r in records[:end] if r.valid]
        if end >= 2 * size and stop(valid, references, rng):
            return end
    return len(records)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("base", type=Path, help="a folder of FORMULA-seedN runs, as benchmarks/accuracy.py makes")
    parser.add_argument("--seeds", default="0")
    parser.add_argument("--rule", default=DEFAULT_RULE)
    parser.add_argument("--thresholds", default="0.8,0.9,0.95")
    args = parser.parse_args()
    print(measured_on())
    stops: dict[str, Stop] = {"separation": stop_on_separation}
    stops |= {f"P>={t}": stop_on_probability(float(t), args.rule) for t in args.thresholds.split(",")}
    names = ["all", *stops]
    relaxed = {n: 0 for n in names}
    hits = {n: 0 for n in names}
    conclusive = {n: [0, 0] for n in names}
    high = 0
    print(f"rule {args.rule}; per stopping rule: subcells relaxed, answer, P ('+' right, '?' inconclusive)")
    for row in read_rows(args.csv):
        for seed in (int(s) for s in args.seeds.split(",")):
            run = args.base / f"{row.formula}-seed{seed}"
            if not (run / "subcells.csv").is_file():
                continue
            records, references = load_run(run)
            cells = []
            for name in names:
                n = len(records) if name == "all" else replay(records, references, stops[name], seed)
                named = answer([r for r in records[:n] if r.valid], references, args.rule, np.random.default_rng(seed))
                right = Row.is_right(row, named)
                relaxed[name] += n
                if row.confidence == "high":
                    hits[name] += right
                    if named and named["conclusive"]:
                        conclusive[name][0] += 1
                        conclusive[name][1] += right
                sure = "" if named is None or named["conclusive"] else "?"
                text = "-" if named is None else f"{'+' if right else ' '}{named['polymorph']} P{named['probability']:.2f}{sure}"
                cells.append(f"{n:4d} {text[:24]:24s}")
            high += row.confidence == "high"
            print(f"{row.formula:7s} {seed} {row.confidence:6s} " + " | ".join(f"{name}: {c}" for name, c in zip(names, cells)), flush=True)
    print(f"high-confidence runs: {high}")
    for name in names:
        called, right = conclusive[name]
        print(f"{name:11s} subcells relaxed {relaxed[name]:6d}  high rows right {hits[name]}/{high}  conclusive right {right}/{called}")


if __name__ == "__main__":
    main()
