"""Runs that are stopped lose nothing: SIGTERM and Ctrl-C stop cleanly with the way to go on, and a
run killed with SIGKILL at random moments, again and again, resumes to the very same answer."""

from __future__ import annotations

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from amorph.results.checkpoint import CHECKPOINT
from amorph.results.lock import LOCK

SMOKE = ["--potential", "emt", "--preset", "smoke", "--seed", "0"]  # the cu_smoke_run fixture's settings
STAGE_FILES = ["known_polymorphs.json", "start.extxyz", "amorphous.extxyz", "subcells_initial.extxyz",
               "subcells_relaxed.extxyz", "subcells.csv", "report.json"]


def _amorph(*args: str, every: float = 0.0) -> subprocess.Popen:
    env = os.environ | {"AMORPH_CHECKPOINT_SECONDS": str(every), "COLUMNS": "120"}
    return subprocess.Popen([sys.executable, "-m", "amorph.cli.main", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env)


def _wait_for(path: Path, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, f"{path} did not appear"
        time.sleep(0.02)


def _stage_reached(out: Path) -> str:
    done = [name for name in STAGE_FILES if (out / name).exists()]
    return f"after {done[-1]}" if done else "before any stage"


def _same_results(a: Path, b: Path) -> None:
    """report.json (its timings aside) and subcells.csv equal to the last digit."""
    first, second = (json.loads((d / "report.json").read_text()) for d in (a, b))
    first.pop("timings"), second.pop("timings")
    assert first == second
    pd.testing.assert_frame_equal(pd.read_csv(a / "subcells.csv"), pd.read_csv(b / "subcells.csv"))


@pytest.mark.parametrize("signum,code", [(signal.SIGTERM, 143), (signal.SIGINT, 130)])
def test_a_signal_stops_the_run_cleanly_and_it_resumes(tmp_path, signum, code):
    out = tmp_path / "run"
    process = _amorph("predict", "Cu", *SMOKE, "--out", str(out))
    _wait_for(out / "start.extxyz", process)  # the melt-quench is running
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode == code, stderr
    last = stderr.strip().splitlines()[-1]
    assert last == f"amorph: stopped by {signal.Signals(signum).name}; finished work is in {out}: continue with `amorph resume {out}`"
    assert "Traceback" not in stderr
    assert not (out / LOCK).exists() and (out / "config.json").is_file()
    resumed = _amorph("resume", str(out), "--quiet")
    stdout, stderr = resumed.communicate(timeout=120)
    assert resumed.returncode == 0, stderr
    assert stdout.startswith("Cu: ")


def test_sigkill_at_random_moments_then_resume_gives_the_uninterrupted_answer(cu_smoke_run, tmp_path):
    """Killed up to 8 times at random moments (between any two relaxations: the checkpoint is written
    after every subcell here), resumed after each, the run ends with the files of one never stopped."""
    reference, _ = cu_smoke_run
    out = tmp_path / "killed"
    rng = random.Random(13)
    kills = []
    process = _amorph("predict", "Cu", *SMOKE, "--out", str(out), "--quiet")
    for _ in range(8):
        time.sleep(rng.uniform(2.5, 9.0))  # the interpreter and torch take ~3 s to start
        if process.poll() is not None:
            break
        process.kill()
        process.wait()
        # a kill after the run folder was locked leaves the lock behind: the next process takes it over
        kills.append(_stage_reached(out) + (f", {CHECKPOINT} present" if (out / CHECKPOINT).exists() else "")
                     + (", lock left" if (out / LOCK).exists() else ""))
        if (out / "config.json").is_file():
            process = _amorph("resume", str(out), "--quiet")
        else:  # killed before the run had begun: the same command again
            process = _amorph("predict", "Cu", *SMOKE, "--out", str(out), "--quiet")
    stdout, stderr = process.communicate(timeout=300)
    assert process.returncode == 0, stderr
    assert len(kills) >= 3, f"the run finished before it could be killed often: {kills}"
    print("kills:", kills)
    _same_results(reference, out)
    assert not (out / CHECKPOINT).exists() and not (out / LOCK).exists()
