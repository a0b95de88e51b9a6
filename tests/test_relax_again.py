"""benchmarks/relax_again.py: the same amorphous cell and subcells, relaxed again under another step limit."""

from __future__ import annotations

import csv
import json
import shutil
import sys


def test_relax_again_keeps_the_cut_subcells_and_changes_only_the_step_limit(cu_smoke_run, tmp_path, monkeypatch, benchmark_script):
    run, _ = cu_smoke_run
    src = tmp_path / "src"
    shutil.copytree(run, src / "cu")
    monkeypatch.setattr(sys, "argv", ["relax_again.py", str(src), str(tmp_path / "dst"), "--relax-steps", "3"])
    benchmark_script("relax_again").main()
    copy = tmp_path / "dst" / "cu"
    assert (copy / "subcells_initial.extxyz").read_bytes() == (run / "subcells_initial.extxyz").read_bytes()
    assert (copy / "amorphous.extxyz").read_bytes() == (run / "amorphous.extxyz").read_bytes()
    assert json.loads((copy / "config.json").read_text())["settings"]["relax"]["max_steps"] == 3
    with open(copy / "subcells.csv", newline="") as handle:
        again = list(csv.DictReader(handle))
    with open(run / "subcells.csv", newline="") as handle:
        before = list(csv.DictReader(handle))
    assert [r["id"] for r in again] == [r["id"] for r in before]
    assert max(int(r["relax_steps"]) for r in again) <= 3 < max(int(r["relax_steps"]) for r in before)
    assert json.loads((copy / "report.json").read_text())["prediction"]
