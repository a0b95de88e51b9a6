"""Same seed, settings, potential and device: the same report.json (timings aside) and subcells.csv,
also with --max-subcells auto, whose last small round once ran in the main process with two torch
threads and came out different from run to run (docs/log/performance.md, X3)."""

from __future__ import annotations

import json

import pandas as pd


def test_adaptive_runs_with_a_torch_model_are_identical(cli, tmp_path, tiny_matgl_model):
    # no MD: the random tiny model is no physical potential (its Cu atoms fuse in any melt-quench), and
    # the relaxation rounds are what is tested
    reports, tables = [], []
    for k in range(2):
        out = tmp_path / f"run{k}"
        code, _, stderr = cli("predict", "Cu", "--potential", f"matgl:{tiny_matgl_model}", "--device", "cpu", "--preset", "smoke",
                              "--md-steps", "1", "--max-subcells", "auto", "--relax-steps", "30",
                              "--seed", "3", "--out", str(out), "--quiet")
        assert code == 0, stderr
        report = json.loads((out / "report.json").read_text())
        report.pop("timings")
        reports.append(report)
        tables.append(pd.read_csv(out / "subcells.csv"))
        sampling = json.loads((out / "sampling.json").read_text())
        assert len(sampling["rounds"]) >= 2, sampling  # more than one round: the case that used to differ
    assert reports[0] == reports[1]
    pd.testing.assert_frame_equal(tables[0], tables[1])


def test_once_there_are_workers_every_round_is_relaxed_in_them(tiny_matgl_model, monkeypatch):
    """The cause of X3: a round smaller than the pool's share went to the main process instead."""
    from ase.build import bulk

    import amorph.md.engine as engine
    from amorph.md.potentials import load_potential

    calls = []
    monkeypatch.setattr(engine, "relax_in_processes", lambda cells, *a, **k: calls.append(len(cells)) or [None] * len(cells))
    monkeypatch.setattr(engine, "worker_count", lambda n, device, name: max(1, min(2, n // 8)))  # as on 2 cores
    monkeypatch.setattr(engine, "WorkerPool", lambda workers: type("P", (), {"workers": workers, "__enter__": lambda s: s,
                                                                             "__exit__": lambda s, *e: None})())
    potential = load_potential(f"matgl:{tiny_matgl_model}", "cpu")
    cells = [bulk("Cu", "fcc", a=3.6 + 0.01 * k) for k in range(3)]
    with engine.Relaxer(potential, "batched", 0.05, 5, expected_cells=32) as relaxer:
        relaxer.relax(cells * 6)  # a full round
        relaxer.relax(cells)  # a last round of 3 cells
    assert calls == [18, 3]
