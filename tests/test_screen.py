"""amorph screen: formulas as Dask tasks on a LocalCluster of 2 workers; a failing formula does not
stop the others; the same command again takes finished formulas as they are and resumes the others."""

from __future__ import annotations

import csv
import json

import pytest

from amorph.errors import AmorphError
from amorph.screen import ScreenItem, cpu_layout, gpu_worker_specs, item_settings, read_items
from amorph.settings import preset_settings

FAST = ["--potential", "emt", "--preset", "smoke", "--workers", "2"]


def _rows(folder):
    with open(folder / "screen.csv", newline="") as handle:
        return {row["formula"]: row for row in csv.DictReader(handle)}


def test_screen_survives_a_failing_formula_and_resumes_without_redoing_anything(cli, tmp_path):
    listing = tmp_path / "metals.csv"
    # Fe: EMT has no parameters for it, so its task fails; Au's line overrides the preset's cell size
    listing.write_text("formula,atoms  # the rest as the preset\n# noble metals first\nCu,\nAu,24\nFe,\n")
    out = tmp_path / "screen"
    code, stdout, stderr = cli("screen", "--file", str(listing), *FAST, "--out", str(out))
    assert code == 1, stderr  # a formula failed: a script or a batch job must see it
    assert "Traceback" not in stderr and "Fe: failed: potential 'emt' does not cover element(s) Fe" in stderr
    assert stderr.strip().splitlines()[-1] == "amorph screen: 1 of 3 failed (their errors are in screen.csv)"
    rows = _rows(out)
    assert [rows[f]["status"] for f in ("Cu", "Au", "Fe")] == ["done", "done", "failed"]
    assert rows["Fe"]["folder"] == "" or (out / "Fe").is_dir()  # no folder listed that was never made
    assert rows["Cu"]["predicted"] and rows["Cu"]["ground_state"] in ("fcc", "hcp", "bcc")
    assert rows["Cu"]["differs"] == str(rows["Cu"]["predicted"] != rows["Cu"]["ground_state"])
    assert json.loads((out / "Au" / "config.json").read_text())["settings"]["packing"]["target_atoms"] == 24
    assert (out / "report.html").is_file() and (out / "figures" / "screen.png").is_file()
    assert "2 of 3 formulas done" in stdout.splitlines()[-1]

    # Au stopped after its subcells were relaxed (as a kill would leave it): the rerun resumes it
    # from there, takes Cu as it was, and tries Fe again
    for name in ("subcells.csv", "polymorphs.csv", "report.json", "report.html", "screen_row.json", "compare.json"):
        (out / "Au" / name).unlink()
    kept = {p: p.stat().st_mtime_ns for p in [*(out / "Cu").rglob("*"), out / "Au" / "subcells_relaxed.extxyz"] if p.is_file()}
    code, stdout, stderr = cli("screen", "--file", str(listing), *FAST, "--out", str(out), "--quiet")
    assert code == 1, stderr
    assert {p: p.stat().st_mtime_ns for p in kept} == kept  # nothing finished was redone
    rows = _rows(out)
    assert rows["Au"]["status"] == "done" and rows["Au"]["resumed"] == "True" and rows["Cu"]["status"] == "done"
    assert rows["Fe"]["status"] == "failed"
    assert stdout.strip().splitlines()[-1].startswith("2 of 3 formulas done") and "1 finished before" in stdout


def test_bad_screen_input_is_one_line_and_exit_2(cli, tmp_path):
    for args, needle in [
        (["screen", *FAST], "no formulas to screen"),
        (["screen", "--file", str(tmp_path / "none.txt"), *FAST], "no such file"),
        (["screen", "Cu", "Cu", *FAST], "listed twice"),
        (["screen", "Cu", "--potential", "nonsense", "--preset", "smoke"], "unknown potential"),
        (["screen", "Cu", *FAST[:-1], "0"], "--workers must be a positive number"),
        (["screen", "Cu", "Ni", "Xq2", *FAST], "Xq2: "),  # refused before any cluster starts
    ]:
        code, _, stderr = cli(*args, "--out", str(tmp_path / "s"))
        assert code == 2 and len(stderr.strip().splitlines()) == 1 and needle in stderr, (args, stderr)
    bad = tmp_path / "bad.csv"
    bad.write_text("formula,colour\nCu,red\n")
    code, _, stderr = cli("screen", "--file", str(bad), *FAST, "--out", str(tmp_path / "s"))
    assert code == 2 and "column 'colour' is not a setting" in stderr
    bad.write_text("formula,atoms\nCu,24\nAu,-3\n")
    code, _, stderr = cli("screen", "--file", str(bad), *FAST, "--out", str(tmp_path / "s"))
    assert code == 2 and stderr.strip() == "amorph: error: Au: --atoms must be a positive number, got -3", stderr
    assert not (tmp_path / "s").exists()  # nothing was started, nothing written


def test_file_lines_comments_and_overrides(tmp_path):
    plain = tmp_path / "list.txt"
    plain.write_text("TiO2  # the flagship\n\n# a comment line\nZrO2\n")
    assert read_items(["HfO2"], plain) == [ScreenItem("HfO2"), ScreenItem("TiO2"), ScreenItem("ZrO2")]
    table = tmp_path / "list.csv"
    table.write_text("formula,md_steps,--n-max\nTiO2,300,\nZrO2,,16\n")
    tio2, zro2 = read_items([], table)
    base = preset_settings("TiO2", "quick")
    assert item_settings(tio2, base).melt_quench.steps_per_stage == 300
    zro2_settings = item_settings(zro2, base)
    assert zro2_settings.subcells.n_max == 16 and not zro2_settings.subcells.fit_polymorphs  # as predict --n-max
    with pytest.raises(AmorphError, match="--md-steps must be a positive number"):
        item_settings(ScreenItem("TiO2", {"md-steps": "-3"}), base)
    with pytest.raises(AmorphError, match="must be a number"):
        item_settings(ScreenItem("TiO2", {"atoms": "many"}), base)


def test_cluster_layouts():
    assert cpu_layout(3, 2) == (2, 1) and cpu_layout(1, 16) == (1, 16) and cpu_layout(50, 16) == (16, 1)
    specs = gpu_worker_specs(4)
    assert [s["options"]["env"]["CUDA_VISIBLE_DEVICES"] for s in specs.values()] == ["0", "1", "2", "3"]
    given = gpu_worker_specs(2, visible="2,3")  # SLURM gave this job GPUs 2 and 3
    assert [s["options"]["env"]["CUDA_VISIBLE_DEVICES"] for s in given.values()] == ["2", "3"]


def test_a_finished_formula_with_a_broken_row_file_or_other_settings(cu_smoke_run, tmp_path):
    """A truncated screen_row.json (a kill while it was written) is no finished row: the run is read
    back and the row written again. Other settings than the folder's run: a failed row that says
    how to go on in a screen's terms."""
    import shutil

    from amorph.screen import SCREEN_ROW, run_item

    folder = tmp_path / "Cu"
    shutil.copytree(cu_smoke_run[0], folder)
    (folder / SCREEN_ROW).write_text('{"formula": "Cu", "sta')
    settings = preset_settings("Cu", "smoke", potential="emt", seed=0)
    row = run_item(settings.to_dict(), str(folder))
    assert row["status"] == "done" and row["resumed"] and not row.get("skipped")
    assert json.loads((folder / SCREEN_ROW).read_text())["predicted"] == row["predicted"]
    again = run_item(settings.to_dict(), str(folder))
    assert again["skipped"] and again["predicted"] == row["predicted"]
    other = run_item(preset_settings("Cu", "smoke", potential="emt", seed=5).to_dict(), str(folder))
    assert other["status"] == "failed"
    assert other["error"] == f"{folder} holds a run with other settings (--seed 0 -> 5); screen into another --out, or remove {folder}"


def test_ctrl_c_stops_the_screen_and_the_same_command_finishes_it(tmp_path):
    """SIGINT while formulas run: exit 130 with the way to go on, no traceback; the same command
    again resumes the formulas that were stopped (their config.json is there) and finishes them."""
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "screen"
    command = [sys.executable, "-m", "amorph.cli.main", "screen", "Cu", "Au", *FAST, "--out", str(out), "--quiet"]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=os.environ | {"COLUMNS": "120"})
    deadline = time.monotonic() + 180
    while not ((out / "Cu" / "amorphous.extxyz").exists() or (out / "Au" / "amorphous.extxyz").exists()):
        assert process.poll() is None, process.communicate()
        assert time.monotonic() < deadline, "no formula reached the subcell stage"
        time.sleep(0.05)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130, stderr
    assert "Traceback" not in stderr
    assert stderr.strip().splitlines()[-1] == (
        f"amorph: stopped by SIGINT; finished work is in {out}: continue with the same `amorph screen` command again"
    )
    assert not (out / "screen.csv").exists()
    again = subprocess.run(command, capture_output=True, text=True, timeout=300, env=os.environ | {"COLUMNS": "120"})
    assert again.returncode == 0, again.stderr
    rows = _rows(out)
    assert [rows[f]["status"] for f in ("Cu", "Au")] == ["done", "done"]
    assert "True" in {rows["Cu"]["resumed"], rows["Au"]["resumed"]}  # at least the one that was stopped mid-run


def test_the_summary_table_prints_any_text_as_it_is():
    """A formula or error with brackets is the user's text, not rich markup (no MarkupError)."""
    from rich.console import Console

    from amorph.cli.render import screen_table

    console = Console(record=True, width=200)
    console.print(screen_table([{"formula": "Cu[/b]", "status": "failed", "error": "'Cu[/b]' is not a chemical formula", "wall_s": 0.1},
                                {"formula": "Au", "status": "done", "predicted": "[fcc]", "share": 0.5, "ground_state": "fcc",
                                 "differs": True, "wall_s": 3.0}]))
    text = console.export_text()
    assert "'Cu[/b]' is not a chemical formula" in text and "[fcc]" in text


def test_a_screen_over_two_potentials_gives_a_row_per_potential_and_says_whether_they_agree(cli, tmp_path, monkeypatch):
    """EMT, and EMT again behind `ase:MODULE:FACTORY`: the same forces through two routes, so the two
    runs must name the same polymorph; Fe fails under both (EMT has no Fe), so its agreement is unknown."""
    (tmp_path / "user_emt.py").write_text("from ase.calculators.emt import EMT\ndef make():\n    return EMT()\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("PYTHONPATH", str(tmp_path))  # the cluster's worker processes import it too
    from amorph.cli import render

    monkeypatch.setattr(render.stdout, "width", 200)  # the whole table on one line per row
    out = tmp_path / "screen"
    code, stdout, stderr = cli("screen", "Cu", "Fe", "--potential", "emt", "--potential", "ase:user_emt:make", "--preset", "smoke",
                               "--workers", "2", "--out", str(out))
    assert code == 1, stderr  # Fe failed under both
    with open(out / "screen.csv", newline="") as handle:
        rows = {(r["formula"], r["potential"]): r for r in csv.DictReader(handle)}
    assert set(rows) == {("Cu", "emt"), ("Cu", "ase:user_emt:make"), ("Fe", "emt"), ("Fe", "ase:user_emt:make")}
    cu = [rows["Cu", "emt"], rows["Cu", "ase:user_emt:make"]]
    assert [r["status"] for r in cu] == ["done", "done"] and cu[0]["predicted"] == cu[1]["predicted"]
    assert [r["potentials_agree"] for r in cu] == ["True", "True"]
    assert rows["Fe", "emt"]["status"] == "failed" and rows["Fe", "emt"]["potentials_agree"] == ""
    assert (out / "Cu--emt" / "report.json").is_file() and (out / "Cu--ase_user_emt_make" / "report.json").is_file()
    assert "potentials agree" in stdout and "ase:user_emt:make" in stdout and "2 of 4 runs (formula x potential) done" in stdout
    page = (out / "report.html").read_text()
    assert "the potentials agree on 1 formula(s)" in page and "ase:user_emt:make" in page


def test_agreement_is_marked_only_where_every_potential_named_a_polymorph():
    from amorph.screen import mark_agreement

    rows = [
        {"formula": "TiO2", "potential": "a", "status": "done", "predicted": "anatase"},
        {"formula": "O2Ti", "potential": "b", "status": "done", "predicted": "rutile"},  # the same formula, written otherwise
        {"formula": "ZnS", "potential": "a", "status": "done", "predicted": "zincblende"},
        {"formula": "ZnS", "potential": "b", "status": "done", "predicted": None},
        {"formula": "Cu", "potential": "a", "status": "done", "predicted": "fcc"},
    ]
    mark_agreement(rows)
    assert [r["potentials_agree"] for r in rows] == [False, False, None, None, None]
    with pytest.raises(AmorphError, match="listed twice"):
        from amorph.screen import screen_tasks

        screen_tasks([ScreenItem("Cu")], ["emt", "emt"])


def test_a_task_gets_its_share_of_cores_as_an_argument_not_through_the_environment(monkeypatch):
    """amorph.screen gives each formula its cores with md.parallel_relax.core_budget; amorph sets no
    AMORPH_CORES of its own (a user's, for a batch script, still counts outside a budget)."""
    import os

    from amorph.md.parallel_relax import core_budget, cpu_workers

    monkeypatch.delenv("AMORPH_CORES", raising=False)
    own = cpu_workers()
    with core_budget(3):
        assert cpu_workers() == 3
        assert "AMORPH_CORES" not in os.environ
    assert cpu_workers() == own
    with core_budget(None):
        assert cpu_workers() == own
    monkeypatch.setenv("AMORPH_CORES", "5")
    assert cpu_workers() == 5
