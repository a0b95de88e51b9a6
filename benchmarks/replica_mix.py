"""How often a run of R melt-quench replicas would be right and sure, replayed from finished runs.

    python benchmarks/replica_mix.py benchmarks/data/first_nucleating.csv RUNS --only TiO2 --seeds 0,1,2,3,4 --designs 2x60,3x40,4x30,4x30:60

Why: a run's replicas are a handful of draws of the amorphous cell, and which polymorphs the cells
make varies from cell to cell more than a bootstrap inside one run can show (TiO2 seed 1 of the quick
preset: rutile at P 0.99 from two cells that made no anatase, docs/log/accuracy.md). Every replica of
every seed's run of a formula is an independent melt-quench under the same settings (its own packing
and MD noise), so a run of R replicas can be assembled from any R of them, and the rule and its P
applied to it as the pipeline applies them (adaptive_replay.answer). The per-run chances this gives
(conclusive and right, inconclusive, conclusive and wrong) say what a user of a design gets, where a
few seeds give only a few coin tosses.

A design `RxK` takes K subcells each of R replicas; `RxK:L` also grows the run by rounds of 30
subcells taken in turn from the replicas (as amorph.sampling's reserve does), up to L per replica,
while the answer is inconclusive: the reserve's answers, not its stop for answers it cannot settle.
A replica's budget is a uniform sample of its cell's boxes relaxed in grid order (motifs.subcells),
so its first K would be a slab of the cell: the budget is shuffled (seeded) before it is cut short,
and the reserve, drawn in random order already, follows it. Products no known polymorph matched are
kept apart per run (their labels are a run's own). Caveats, printed with the table: mixes share
replicas, so they are not independent draws; a pool of N replicas gives at most C(N, R) runs; a
design is skipped for replicas with fewer than its subcells.
"""

from __future__ import annotations

import argparse
import itertools
import json
import math
import random
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from accuracy import Row, read_rows  # benchmarks/: this script runs from there, as accuracy.py does
from adaptive_replay import answer, load_run

from amorph.matching.polymorph import Polymorph
from amorph.results.provenance import measured_on
from amorph.results.subcells import SubcellRecord, outcomes_of
from amorph.settings import DEFAULT_RULE

RESERVE_ROUND = 30  # subcells per reserve round, over all replicas (amorph.sampling: 120 in 4 rounds)
OUTCOMES = ("right, conclusive", "right, inconclusive", "wrong, inconclusive", "wrong, conclusive", "nothing named")


@dataclass(frozen=True)
class Design:
    """R replicas of K subcells each, grown toward L while inconclusive."""

    replicas: int
    subcells: int
    most: int

    @classmethod
    def parse(cls, text: str) -> Design:
        replicas, _, sizes = text.partition("x")
        first, _, most = sizes.partition(":")
        design = cls(int(replicas), int(first), int(most or first))
        if design.replicas < 1 or design.subcells < 1 or design.most < design.subcells:
            raise ValueError(f"design {text}: want RxK or RxK:L with R, K >= 1 and L >= K")
        return design

    def __str__(self) -> str:
        return f"{self.replicas}x{self.subcells}" + (f":{self.most}" if self.most > self.subcells else "")


def pool_of(runs: list[Path]) -> tuple[list[list[SubcellRecord]], list[Polymorph]]:
    """Every replica of these runs, each its budget shuffled then its reserve in relaxed order; the
    references (the same for every run, or an error)."""
    pool: list[list[SubcellRecord]] = []
    references: list[Polymorph] = []
    for run in runs:
        records, references_here = load_run(run)
        if references and [p.name for p in references_here] != [p.name for p in references]:
            raise SystemExit(f"{run}: other known polymorphs than {runs[0]}; pool runs of one formula and database")
        references = references or references_here
        config = json.loads((run / "config.json").read_text())
        replicas = sorted({r.replica for r in records})
        budget = math.ceil(config["settings"]["subcells"]["max_subcells"] / max(1, len(replicas)))
        records = [r if r.known_polymorph else replace(r, match=f"{run.name}:{r.match}") for r in records]
        for k in replicas:
            cells = [r for r in records if r.replica == k]
            head = cells[:budget]
            random.Random(f"{run.name}/{k}").shuffle(head)
            pool.append(head + cells[budget:])
    return pool, references


def judge_mix(
    replicas: list[list[SubcellRecord]], design: Design, references: list[Polymorph], rule: str, row: Row, seed: int
) -> tuple[str, int]:
    """The outcome of one assembled run (one of OUTCOMES) and the subcells it relaxed."""
    taken = [design.subcells] * len(replicas)
    turn = 0
    while True:
        valid = [replace(r, replica=j) for j, cells in enumerate(replicas) for r in cells[: taken[j]] if r.valid]
        named = answer(valid, references, rule, np.random.default_rng(seed))
        if named is None or named["conclusive"] or min(taken) >= design.most:
            break
        for _ in range(RESERVE_ROUND):  # one reserve round: 30 subcells, one replica after another
            growing = [j for j in range(len(replicas)) if taken[j] < design.most]
            if not growing:
                break
            j = growing[turn % len(growing)]
            taken[j] += 1
            turn += 1
    if named is None:
        return OUTCOMES[4], sum(taken)
    right = Row.is_right(row, named)
    kind = {(True, True): 0, (True, False): 1, (False, False): 2, (False, True): 3}[(right, named["conclusive"])]
    return OUTCOMES[kind], sum(taken)


def mixes(pool: list[list[SubcellRecord]], design: Design, most: int, seed: int) -> list[tuple[int, ...]]:
    """Up to `most` distinct sets of R replicas from the pool that hold the design's subcells."""
    usable = [k for k, cells in enumerate(pool) if len(cells) >= design.most]
    sets = list(itertools.combinations(usable, design.replicas))
    random.Random(seed).shuffle(sets)
    return sets[:most]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("csv", type=Path)
    parser.add_argument("base", type=Path, help="a folder of FORMULA-seedN runs, as benchmarks/accuracy.py makes")
    parser.add_argument("--only", required=True, help="comma-separated formulas")
    parser.add_argument("--seeds", default="0,1,2")
    parser.add_argument("--designs", default="2x60,3x40,4x30")
    parser.add_argument("--mixes", type=int, default=150, help="the most replica sets per design")
    parser.add_argument("--rule", default=DEFAULT_RULE)
    args = parser.parse_args()
    print(measured_on())
    try:
        designs = [Design.parse(d) for d in args.designs.split(",")]
    except ValueError as error:
        parser.error(str(error))
    if args.mixes < 1:
        parser.error("--mixes must be at least 1")
    rows = {row.formula: row for row in read_rows(args.csv)}
    if missing := [f for f in args.only.split(",") if f not in rows]:
        parser.error(f"not in {args.csv}: {', '.join(missing)}")
    for formula in args.only.split(","):
        runs = [args.base / f"{formula}-seed{s}" for s in args.seeds.split(",")]
        runs = [run for run in runs if (run / "subcells.csv").is_file()]
        if not runs:
            print(f"{formula}: no finished runs under {args.base}")
            continue
        pool, references = pool_of(runs)
        row = rows[formula]
        identities = [[o.identity for o in outcomes_of([r for r in cells if r.valid], references)] for cells in pool]
        formed = sum(any(Row.is_right(row, {"polymorph": i.label, "known": i.known, "spacegroup_number": i.spacegroup_number})
                         for i in cell) for cell in identities)
        print(f"{formula}: {len(pool)} replicas from {len(runs)} runs, subcells each {[len(c) for c in pool]}; "
              f"the expected {row.expected} formed in {formed} of them; rule {args.rule}")
        print(f"{'design':10s} {'runs':>5s} {'subcells':>8s}  " + "  ".join(f"{o:>19s}" for o in OUTCOMES))
        for design in designs:
            sets = mixes(pool, design, args.mixes, seed=0)
            if not sets:
                print(f"{str(design):10s} too few replicas with {design.most} subcells")
                continue
            tally = dict.fromkeys(OUTCOMES, 0)
            used = 0
            for k, chosen in enumerate(sets):
                outcome, n = judge_mix([pool[i] for i in chosen], design, references, args.rule, row, seed=k)
                tally[outcome] += 1
                used += n
            print(f"{str(design):10s} {len(sets):5d} {used / len(sets):8.0f}  "
                  + "  ".join(f"{tally[o] / len(sets):19.0%}" for o in OUTCOMES), flush=True)
    print("mixes share replicas: read the shares as a design's odds on this pool, not as independent runs")


if __name__ == "__main__":
    main()
