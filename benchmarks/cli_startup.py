"""How fast a mistake is answered (`amorph predict` with a wrong formula, number or path), and how fast
`amorph db list` answers.

The CLI checks its input before importing torch, matgl or chgnet (amorph.inputs), so a typo should be
answered in well under the 1.5 s target on 2 cores. Each case runs the real console script in a fresh
process, several times; beside it, in the same run, the time to import what the checks avoid, so the
ratio shows what the ordering saves on this machine.

    python benchmarks/cli_startup.py [--repeats 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from amorph.results.provenance import measured_on

TARGET_S = 1.5
LIST_TARGET_S = 1.0  # `amorph db list`: 63 formulas' names (issue 35)


def cases(scratch: Path) -> list[tuple[str, list[str]]]:
    """(what is wrong, arguments), each a mistake a user makes."""
    return [
        ("formula", ["predict", "tio2"]),
        ("element", ["predict", "Xx2"]),
        ("number", ["predict", "TiO2", "--atoms", "-3"]),
        ("range", ["predict", "TiO2", "--d-frac", "1.5"]),
        ("choice", ["predict", "TiO2", "--engine", "fast"]),
        ("--out path", ["predict", "TiO2", "--out", str(scratch / "a-file.txt")]),
        ("--db path", ["predict", "TiO2", "--db", str(scratch / "no-such-folder")]),
        ("model path", ["predict", "TiO2", "--potential", f"matgl:{scratch / 'no-model'}"]),
    ]


def wall(command: list[str]) -> tuple[float, subprocess.CompletedProcess]:
    started = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    return time.perf_counter() - started, done


def median_wall(command: list[str], repeats: int) -> tuple[float, subprocess.CompletedProcess]:
    runs = [wall(command) for _ in range(repeats)]
    return statistics.median(t for t, _ in runs), runs[-1][1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    print(measured_on())
    amorph = shutil.which("amorph") or str(Path(sys.executable).with_name("amorph"))
    with tempfile.TemporaryDirectory() as scratch_dir:
        scratch = Path(scratch_dir)
        (scratch / "a-file.txt").write_text("not a folder")
        worst = 0.0
        for what, argv in cases(scratch):
            seconds, done = median_wall([amorph, *argv], args.repeats)
            first_line = (done.stderr.strip().splitlines() or [""])[0]
            ok = done.returncode == 2 and first_line.startswith("amorph: error:") and len(done.stderr.strip().splitlines()) == 1
            worst = max(worst, seconds)
            print(f"{what:12s} {seconds:5.2f} s  exit {done.returncode}  {'one line' if ok else 'NOT ONE LINE'}: {first_line[:90]}")
        listing, done = median_wall([amorph, "db", "list"], args.repeats)
        print(f"{'db list':12s} {listing:5.2f} s  exit {done.returncode}, {len(done.stdout.splitlines())} lines "
              f"(target < {LIST_TARGET_S} s: {'met' if listing < LIST_TARGET_S else 'NOT met'})")
        heavy, _ = median_wall([sys.executable, "-c", "import torch, matgl, chgnet.model"], max(1, args.repeats // 2))
        print(f"importing torch, matgl and chgnet alone: {heavy:.2f} s")
        print(f"slowest mistake {worst:.2f} s, target < {TARGET_S} s: {'met' if worst < TARGET_S else 'NOT met'}; "
              f"heavy imports / slowest mistake = {heavy / worst:.1f}")


if __name__ == "__main__":
    main()
