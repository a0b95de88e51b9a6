"""An interim answer from a long run still in its crystallization stage, without disturbing it.

Copies the run folder, keeps in the copy only the subcells already relaxed (those in the
checkpoint, results.checkpoint), and finishes the copy with `amorph resume`: identification,
ranking and the report on the subcells finished so far. The running run is only read.

The finished subcells are whole chunks of the guided schedule (md.parallel_relax) plus the parts of
the chunks in flight, so the sample is close to a random one of the selected subcells, slightly
favouring those that converge fast.

    python benchmarks/interim_look.py RUN_DIR COPY_DIR
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

from ase.io import read, write

from amorph.results.checkpoint import CHECKPOINT
from amorph.results.lock import LOCK
from amorph.results.provenance import measured_on
from amorph.results.rundir import SUBCELLS_INITIAL


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("copy", type=Path)
    args = parser.parse_args()
    print(measured_on())
    if not (args.run / CHECKPOINT).is_file():
        raise SystemExit(f"{args.run} has no {CHECKPOINT}: it is not in its crystallization stage")
    if args.copy.exists():
        raise SystemExit(f"{args.copy} exists; give a new folder")
    shutil.copytree(args.run, args.copy, ignore=shutil.ignore_patterns(LOCK))
    done = {int(a.info["subcell_id"]) for a in read(args.copy / CHECKPOINT, index=":")}
    cut = read(args.copy / SUBCELLS_INITIAL, index=":")
    write(args.copy / SUBCELLS_INITIAL, [a for a in cut if int(a.info["subcell_id"]) in done], format="extxyz")
    print(f"{len(done)} of {len(cut)} subcells relaxed so far; finishing the copy on those")
    finished = subprocess.run([sys.executable, "-m", "amorph.cli.main", "resume", str(args.copy), "--quiet"], text=True)
    raise SystemExit(finished.returncode)


if __name__ == "__main__":
    main()
