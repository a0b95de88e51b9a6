"""What a screen costs against the same formulas run one after another, side by side in one run.

Runs `amorph predict` for each formula in turn (each in a fresh process, as a user would), then
`amorph screen` of the same formulas with the same settings into another folder, and prints the
wall time of each and their ratio. On 2 cores a screen runs two formulas at a time with one core
each; one predict at a time has both cores for its relaxations, so the ratio says what running
formulas side by side gains over parallel relaxation within one formula.

    python benchmarks/screen_walltime.py TiO2 ZrO2 HfO2 --potential chgnet --preset smoke
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amorph.results.provenance import measured_on


def _amorph(*args: str) -> float:
    started = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "amorph.cli.main", *args], capture_output=True, text=True)
    if done.returncode != 0:
        raise SystemExit(f"amorph {' '.join(args)} failed:\n{done.stderr[-2000:]}")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("formulas", nargs="+")
    parser.add_argument("--potential", default="chgnet")
    parser.add_argument("--preset", default="smoke")
    parser.add_argument("--seed", default="0")
    args = parser.parse_args()
    print(measured_on())
    common = ["--potential", args.potential, "--preset", args.preset, "--seed", args.seed]
    scratch = Path(tempfile.mkdtemp(prefix="amorph-screen-bench-"))
    try:
        one_by_one = {f: _amorph("predict", f, *common, "--out", str(scratch / "serial" / f), "--quiet") for f in args.formulas}
        screen = _amorph("screen", *args.formulas, *common, "--out", str(scratch / "screen"), "--quiet")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    serial = sum(one_by_one.values())
    for formula, seconds in one_by_one.items():
        print(f"predict {formula:<8} {seconds:7.1f} s")
    print(f"one after another  {serial:7.1f} s")
    print(f"screen             {screen:7.1f} s (formulas side by side on a LocalCluster, with the ground state by energy of each)")
    print(f"ratio serial/screen {serial / screen:.2f}")


if __name__ == "__main__":
    main()
