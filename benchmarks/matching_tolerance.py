"""How the matching tolerances change the answer: name finished runs' products again with other ones.

    python benchmarks/matching_tolerance.py amorph-runs/accuracy amorph-runs/tolerance-loose --ltol 0.3 --stol 0.5 --angle-tol 10
    python benchmarks/accuracy.py benchmarks/data/first_nucleating.csv --out amorph-runs/tolerance-loose --seeds 0,1

Every run folder under SRC (one with config.json and subcells_relaxed.extxyz) is copied to the same
place under DST with the tolerances written into its settings (the `matching` section of config.json,
amorph.settings.MatchingSettings) and resumed there. The crystallization stage is kept as it ran, on
purpose (its reserve rounds were decided under the run's own tolerances; the copy's notes say so), so
only the naming and what follows differ, and accuracy.py scores the copies as it scores any run. The
defaults are pymatgen's (ltol 0.2, stol 0.3, angle_tol 5), which amorph uses.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rerun import copy_run, resume_copy  # benchmarks/rerun.py, beside this script

from amorph.results import rundir as files
from amorph.results.provenance import measured_on
from amorph.results.rundir import RunDir
from amorph.settings import RunSettings
from amorph.stages import STAGE_NAMES, StageRecords


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--ltol", type=float, default=0.2)
    parser.add_argument("--stol", type=float, default=0.3)
    parser.add_argument("--angle-tol", type=float, default=5.0)
    args = parser.parse_args()
    print(measured_on())

    changes = {("matching", "ltol"): args.ltol, ("matching", "stol"): args.stol, ("matching", "angle_tol"): args.angle_tol}
    runs = sorted(p.parent for p in args.src.rglob(files.SUBCELLS_RELAXED) if (p.parent / files.CONFIG).is_file())
    print(f"ltol {args.ltol}, stol {args.stol}, angle_tol {args.angle_tol}: {len(runs)} runs")
    for run in runs:
        target = args.dst / run.relative_to(args.src)

        def renamed() -> RunSettings:
            note = f"products named again with {args.ltol}/{args.stol}/{args.angle_tol}; subcells relaxed as the run did (matching_tolerance.py)"
            settings = copy_run(run, target, None, changes, note=note)  # noqa: B023
            StageRecords(RunDir(target)).keep(list(STAGE_NAMES[:STAGE_NAMES.index("identify_products")]), settings)  # noqa: B023
            return settings

        resume_copy(run, target, renamed)
        before = json.loads((run / files.REPORT).read_text()) if (run / files.REPORT).is_file() else {}
        after = json.loads((target / files.REPORT).read_text())
        known = [sum(p["count"] for p in r.get("polymorphs", []) if p.get("known")) for r in (before, after)]
        print(f"{run.relative_to(args.src)}: valid {after['n_valid']}, matched a known polymorph {known[0]} -> {known[1]}", flush=True)


if __name__ == "__main__":
    main()
