"""What each stage of a run cost, and the share of the similarity stage, from the run's own timings.

    python benchmarks/stage_costs.py RUN_DIR [RUN_DIR ...]

The stages of one run are timed in one process on one machine (report.json `timings`, seconds per
stage, written by amorph.pipeline), so their ratios are measured side by side; a stage that was stopped
and resumed, or adopted from a folder older than stages.json, has only part of its work timed, and
such a run is marked (amorph.stages.StageRecords.resumed). The drawing stage runs after report.json
is written and is not in it (it takes seconds). Prints one line per run and the
similarity stage's share of the stages timed; the issue 33 target is at most 10% of a quick run.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from amorph.results import rundir as files
from amorph.results.provenance import measured_on
from amorph.results.rundir import RunDir
from amorph.stages import StageRecords

SIMILARITY_STAGE = "compare_with_polymorphs"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("runs", nargs="+", type=Path)
    args = parser.parse_args()
    print(measured_on())
    for run in args.runs:
        report_file = run / "report.json"
        if not report_file.is_file():
            raise SystemExit(f"{run}: no report.json (not a finished amorph run)")
        timings = json.loads(report_file.read_text()).get("timings", {})
        total = sum(timings.values())
        if SIMILARITY_STAGE not in timings or total <= 0:
            print(f"{run.name}: no timing of {SIMILARITY_STAGE} (a run made before it, or resumed past it)")
            continue
        folder = RunDir(run)
        resumed = StageRecords(folder).resumed() if folder.has(files.STAGE_RECORDS) else ["earlier stages"]  # older runs: untimed
        partial = f" (resumed: {', '.join(resumed)} timed in part)" if resumed and SIMILARITY_STAGE in timings else ""
        stages = ", ".join(f"{name} {seconds:.0f} s" for name, seconds in timings.items())
        share = timings[SIMILARITY_STAGE] / total
        print(f"{run.name}: {stages}; similarity {timings[SIMILARITY_STAGE]:.0f} s of {total:.0f} s = {100 * share:.1f}%{partial}")


if __name__ == "__main__":
    main()
