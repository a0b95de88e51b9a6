"""How the matching tolerances change the answer: name finished runs' products again with other ones.

    python benchmarks/matching_tolerance.py amorph-runs/accuracy amorph-runs/tolerance-loose --ltol 0.3 --stol 0.5 --angle-tol 10
    python benchmarks/accuracy.py benchmarks/data/first_nucleating.csv --out amorph-runs/tolerance-loose --seeds 0,1

Every run folder under SRC (one with config.json and subcells_relaxed.extxyz) is copied to the same
place under DST without its stage-5 and stage-6 files, and resumed there with pymatgen's
StructureMatcher at the given tolerances: the melt-quench and the relaxed subcells are reused as they
are, so only the naming differs, and accuracy.py scores the copies as it scores any run. The defaults
are pymatgen's (ltol 0.2, stol 0.3, angle_tol 5), which amorph uses (amorph.matching.matcher).
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from pymatgen.analysis.structure_matcher import StructureMatcher
from rerun import copy_run  # benchmarks/rerun.py, beside this script

import amorph.matching.identify as identify_module
from amorph.pipeline import predict
from amorph.results import rundir as files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--ltol", type=float, default=0.2)
    parser.add_argument("--stol", type=float, default=0.3)
    parser.add_argument("--angle-tol", type=float, default=5.0)
    args = parser.parse_args()

    def matcher() -> StructureMatcher:  # amorph.matching.matcher.make_matcher with other tolerances
        return StructureMatcher(ltol=args.ltol, stol=args.stol, angle_tol=args.angle_tol, primitive_cell=True, scale=True, attempt_supercell=True)

    identify_module.make_matcher = matcher
    runs = sorted(p.parent for p in args.src.rglob(files.SUBCELLS_RELAXED) if (p.parent / files.CONFIG).is_file())
    print(f"ltol {args.ltol}, stol {args.stol}, angle_tol {args.angle_tol}: {len(runs)} runs")
    for run in runs:
        target = args.dst / run.relative_to(args.src)
        if not (target / files.REPORT).is_file():
            shutil.rmtree(target, ignore_errors=True)
            predict(copy_run(run, target, "identify_products"), target, resume=True)
        before = json.loads((run / files.REPORT).read_text()) if (run / files.REPORT).is_file() else {}
        after = json.loads((target / files.REPORT).read_text())
        known = [sum(p["count"] for p in r.get("polymorphs", []) if p.get("known")) for r in (before, after)]
        print(f"{run.relative_to(args.src)}: valid {after['n_valid']}, matched a known polymorph {known[0]} -> {known[1]}", flush=True)


if __name__ == "__main__":
    main()
