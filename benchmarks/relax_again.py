"""How the relaxation's step limit or potential changes the answer: relax finished runs' subcells again.

    python benchmarks/relax_again.py amorph-runs/accuracy amorph-runs/relax-150 --relax-steps 150 --only TiO2-seed0,TiO2-seed1
    python benchmarks/accuracy.py benchmarks/data/first_nucleating.csv --out amorph-runs/relax-150 --seeds 0,1 --score-only
    python benchmarks/relax_again.py amorph-runs/accuracy amorph-runs/relax-d3 --relax-steps 150 --potential chgnet+d3

Every run folder under SRC (one with config.json and subcells_initial.extxyz; `--only` picks folder
names) is copied to the same place under DST with only what comes before the relaxation (references,
start, melt-quench, cut subcells), its settings changed to the new step limit (and `--potential`, which
config.json then records with a note that the melt-quench ran under the old one), and resumed there: the
amorphous cell and its subcells are the ones the run had, so only the relaxation differs, and
accuracy.py scores the copies as it scores any run. Prints each copy's crystallization time beside
the original's (one core each unless AMORPH_CORES says otherwise).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from rerun import copy_run, resume_copy, run_folders  # benchmarks/rerun.py, beside this script

from amorph.md.potentials import load_potential
from amorph.results import rundir as files
from amorph.results.provenance import measured_on
from amorph.results.rundir import RunDir
from amorph.settings import RunSettings
from amorph.stages import STAGE_NAMES, StageRecords


def copy_before_relaxing(run: Path, target: Path, relax_steps: int, potential: str | None = None) -> RunSettings:
    """The run up to its cut subcells, with the new step limit (and potential) written into its settings."""
    settings = copy_run(run, target, "crystallize_subcells", {("relax", "max_steps"): relax_steps})
    config = json.loads((target / files.CONFIG).read_text())
    if potential is not None and potential != config["settings"]["potential"]:
        loaded = load_potential(potential, config["settings"]["device"])
        before = config["potential"]["used"]
        config["settings"]["potential"] = potential
        config["potential"] |= {"requested": potential, "used": loaded.name, "description": loaded.description,
                                "weights_checksum": loaded.checksum}
        config["potential"]["notes"] = [*config["potential"].get("notes", []),
                                        f"melt-quench and cut under {before}; subcells relaxed under {loaded.name} (relax_again.py)"]
        (target / files.CONFIG).write_text(json.dumps(config, indent=2))
        settings = RunSettings.from_dict(config["settings"])
        # the melt-quench and the cut stay the original potential's, as the note says
        StageRecords(RunDir(target)).keep(list(STAGE_NAMES[:STAGE_NAMES.index("crystallize_subcells")]), settings)
    return settings


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("src", type=Path)
    parser.add_argument("dst", type=Path)
    parser.add_argument("--relax-steps", type=int, required=True)
    parser.add_argument("--potential", default=None, help="relax under this potential instead of the run's own")
    parser.add_argument("--only", default="", help="comma-separated run folder names (default: every run under SRC)")
    args = parser.parse_args()
    print(measured_on())
    runs = [r for r in run_folders(args.src, args.only) if (r / files.SUBCELLS_INITIAL).is_file()]
    under = f" under {args.potential}" if args.potential else ""
    print(f"relaxing again with at most {args.relax_steps} FIRE steps{under}: {len(runs)} runs", flush=True)
    for run in runs:
        target = args.dst / run.relative_to(args.src)
        resume_copy(run, target, lambda: copy_before_relaxing(run, target, args.relax_steps, args.potential))  # noqa: B023
        seconds = [json.loads((r / files.REPORT).read_text()).get("timings", {}).get("crystallize_subcells") for r in (run, target)]
        text = " -> ".join("-" if s is None else f"{s:.0f} s" for s in seconds)
        print(f"{run.relative_to(args.src)}: crystallization {text}", flush=True)


if __name__ == "__main__":
    main()
