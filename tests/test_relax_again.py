"""benchmarks/relax_again.py: the same amorphous cell and subcells, relaxed again under another step limit."""

from __future__ import annotations

import csv
import json
import shutil
import sys

import pytest


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


def test_relax_again_under_another_potential_records_it(cu_smoke_run, tmp_path, monkeypatch, benchmark_script):
    run, _ = cu_smoke_run
    src = tmp_path / "src"
    shutil.copytree(run, src / "cu")
    argv = ["relax_again.py", str(src), str(tmp_path / "dst"), "--relax-steps", "5", "--potential", "emt+d3"]
    monkeypatch.setattr(sys, "argv", argv)
    benchmark_script("relax_again").main()
    copy = tmp_path / "dst" / "cu"
    config = json.loads((copy / "config.json").read_text())
    assert config["settings"]["potential"] == "emt+d3" and config["potential"]["used"] == "emt+d3"
    assert any("melt-quench and cut under emt" in note for note in config["potential"]["notes"])
    energies = {}
    for folder in (run, copy):
        with open(folder / "subcells.csv", newline="") as handle:
            energies[folder] = [float(r["initial_energy_per_atom"]) for r in csv.DictReader(handle)]
    # the same subcells, now with D3's (large, for a metal) binding added
    assert len(energies[copy]) == len(energies[run])
    assert all(d3 < plain - 0.1 for d3, plain in zip(energies[copy], energies[run]))


def test_rerun_from_the_cut_keeps_the_melt_quench_and_takes_new_settings(cu_smoke_run, tmp_path, monkeypatch, benchmark_script):
    """benchmarks/rerun.py: the stages from --from on run again on a copy; what comes before is kept."""
    run, _ = cu_smoke_run
    src = tmp_path / "src"
    shutil.copytree(run, src / "cu")
    (src / "cu" / "stages.json").unlink()  # a run from before the stage records: taken as it ran
    argv = ["rerun.py", str(src), str(tmp_path / "dst"), "--from", "cut_subcells", "--references",
            "--set", "subcells.more_if_inconclusive=8", "--only", "cu"]
    monkeypatch.setattr(sys, "argv", argv)
    rerun = benchmark_script("rerun")
    rerun.main()
    copy = tmp_path / "dst" / "cu"
    for kept in ("amorphous.extxyz", "start.extxyz", "melt_quench.csv"):
        assert (copy / kept).read_bytes() == (run / kept).read_bytes()
    config = json.loads((copy / "config.json").read_text())
    assert config["settings"]["subcells"]["more_if_inconclusive"] == 8
    assert any("rerun.py" in note for note in config["potential"]["notes"])
    assert json.loads((copy / "subcell_census.json").read_text())["reserve"] == 8
    assert (copy / "known_polymorphs.json").is_file() and json.loads((copy / "report.json").read_text())["prediction"]
    with pytest.raises(SystemExit, match="no setting 'subcells.nonsense'"):
        rerun.copy_run(run, tmp_path / "other", "cut_subcells", {("subcells", "nonsense"): 1})
    assert rerun.forced("rank_polymorphs", references=True) == ["collect_references", "rank_polymorphs", "draw_report"]


def stage_seconds(folder):
    return {name: record["seconds"] for name, record in json.loads((folder / "stages.json").read_text())["stages"].items()}


def test_a_changed_setting_runs_the_stages_that_read_it_and_what_their_outputs_reach(cu_smoke_run, tmp_path, benchmark_script):
    """The stage table decides: subcells.n_max is read by stage 0 (the size limit it stores) and the cut.
    Stage 0 runs again; its known polymorphs come out byte for byte the same, so the packing, the
    melt-quench and the comparison with the amorphous solid are kept; the cut and every stage that
    reads what it changed run again, and the new limit is the one used (rerun.py once ignored it)."""
    run, _ = cu_smoke_run
    rerun = benchmark_script("rerun")
    copy = tmp_path / "cu"
    rerun.resume_copy(run, copy, lambda: rerun.copy_run(run, copy, None, {("subcells", "n_max"): 4}))
    before, after = stage_seconds(run), stage_seconds(copy)
    again = [name for name in after if after[name] != before[name]]
    assert again == ["collect_references", "cut_subcells", "crystallize_subcells", "identify_products", "rank_polymorphs", "draw_report"]
    assert json.loads((copy / "subcell_census.json").read_text())["n_max"] == 4
    assert json.loads((copy / "subcell_range.json").read_text())["subcell_size_limit"]["n_max"] == 4
    assert max(int(r["n_atoms"]) for r in csv.DictReader(open(copy / "subcells.csv", newline=""))) <= 4
    assert json.loads((run / "subcell_census.json").read_text())["n_max"] == 8

    # relax.fmax: the relaxation and the amorphous solid's comparison with the polymorphs read it
    other = tmp_path / "fmax"
    rerun.resume_copy(run, other, lambda: rerun.copy_run(run, other, None, {("relax", "fmax"): 0.2}))
    after = stage_seconds(other)
    assert [name for name in after if after[name] != before[name]] == [
        "crystallize_subcells", "identify_products", "compare_with_polymorphs", "rank_polymorphs", "draw_report"]


def test_matching_tolerances_are_settings_a_copy_records_and_names_again_with(cu_smoke_run, tmp_path, monkeypatch, benchmark_script):
    """benchmarks/matching_tolerance.py sets the tolerances through the run's settings (config.json's
    `matching`), not by patching amorph; the relaxation is kept as it ran and only the naming differs."""
    run, _ = cu_smoke_run
    assert json.loads((run / "config.json").read_text())["settings"]["matching"] == {
        "ltol": 0.2, "stol": 0.3, "angle_tol": 5.0, "symprec": [0.01, 0.05, 0.1]}
    src = tmp_path / "src"
    shutil.copytree(run, src / "cu")
    argv = ["matching_tolerance.py", str(src), str(tmp_path / "dst"), "--ltol", "0.001", "--stol", "0.001", "--angle-tol", "0.01"]
    monkeypatch.setattr(sys, "argv", argv)
    benchmark_script("matching_tolerance").main()
    copy = tmp_path / "dst" / "cu"
    config = json.loads((copy / "config.json").read_text())
    assert config["settings"]["matching"]["ltol"] == 0.001 and any("matching_tolerance.py" in n for n in config["potential"]["notes"])
    before, after = stage_seconds(run), stage_seconds(copy)
    assert after["crystallize_subcells"] == before["crystallize_subcells"] and after["identify_products"] != before["identify_products"]
    assert (copy / "subcells_relaxed.extxyz").read_bytes() == (run / "subcells_relaxed.extxyz").read_bytes()
    matched = [sum(r["known_polymorph"] == "True" for r in csv.DictReader(open(f / "subcells.csv", newline=""))) for f in (run, copy)]
    assert matched[1] < matched[0]
