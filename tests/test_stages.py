"""The stage table (amorph.stages): one declaration of what each stage reads and writes, enforced while
it runs, and the run folder's layout and docs/reading-a-run.md taken from it."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from amorph.results import rundir as files
from amorph.results.rundir import RunDir
from amorph.settings import preset_settings
from amorph.stages import (
    STAGES,
    DeclaredRunDir,
    DeclaredSettings,
    UndeclaredAccess,
    fingerprint,
    markdown_table,
    recorded_model,
    stage,
)

DOCS = Path(__file__).resolve().parents[1] / "docs" / "reading-a-run.md"


def test_the_docs_show_the_stage_table_as_the_code_declares_it():
    assert markdown_table() in DOCS.read_text()


def test_every_stage_function_loads_and_names_match():
    for entry in STAGES:
        assert entry.load().__name__ == entry.name


def test_a_stage_sees_only_the_settings_it_declares():
    settings = preset_settings("Cu", "smoke")
    cut = DeclaredSettings(settings, stage("cut_subcells"))
    assert cut.subcells.n_max == 8 and cut.seed == 0 and cut.formula == "Cu"
    with pytest.raises(UndeclaredAccess, match="cut_subcells read setting relax"):
        _ = cut.relax
    compare = DeclaredSettings(settings, stage("compare_with_polymorphs"))
    assert compare.relax.fmax == settings.relax.fmax  # one field of a section
    with pytest.raises(UndeclaredAccess, match="relax.max_steps is not among"):
        _ = compare.relax.max_steps
    with pytest.raises(UndeclaredAccess, match="read setting rule"):
        _ = compare.rule


def test_a_stage_touches_only_the_files_it_declares(tmp_path):
    folder = DeclaredRunDir(tmp_path, stage("identify_products"))
    folder.write_text(f"{files.PRODUCTS}/fcc.cif", "data_x\n")  # inside a declared folder
    with pytest.raises(UndeclaredAccess, match="would write report.json"):
        folder.write_json(files.REPORT, {})
    with pytest.raises(UndeclaredAccess, match="would read amorphous.extxyz"):
        folder.read_atoms(files.AMORPHOUS_XYZ)
    assert not (tmp_path / files.REPORT).exists()


def test_the_run_folder_holds_what_the_table_says_and_stages_json_what_each_ran_with(cu_smoke_run):
    run, _ = cu_smoke_run
    declared = {name for entry in STAGES for name in entry.writes} | {files.CONFIG, files.STAGE_RECORDS}
    declared |= {files.COMPARE_CSV, files.COMPARE_JSON}  # `amorph compare RUN`, run on this folder by another test, adds them
    written = {p.name for p in run.iterdir()}
    assert written <= declared, written - declared
    records = json.loads((run / files.STAGE_RECORDS).read_text())["stages"]
    assert list(records) == [entry.name for entry in STAGES] and all(r["finished"] for r in records.values())
    settings = RunDir(run).read_json(files.CONFIG)["settings"]
    from amorph.settings import RunSettings

    for entry in STAGES:  # what a resume compares against: the same fingerprint, worked out again
        assert records[entry.name]["fingerprint"] == fingerprint(entry, RunSettings.from_dict(settings), RunDir(run),
                                                                 recorded_model(RunDir(run)))
    assert records["run_melt_quench"]["fingerprint"]["settings"]["melt_quench"]["steps_per_stage"] == 250


def test_a_stage_left_half_done_under_other_settings_starts_from_scratch(cu_smoke_run, tmp_path, cli):
    """A checkpoint written under one relaxation setting is not used under another: the stage's outputs
    go before it runs again."""
    import shutil

    run, _ = cu_smoke_run
    copy = tmp_path / "cu"
    shutil.copytree(run, copy)
    records = json.loads((copy / files.STAGE_RECORDS).read_text())
    records["stages"]["crystallize_subcells"]["fingerprint"]["settings"]["relax"]["fmax"] = 0.5  # as if begun under 0.5
    records["stages"]["crystallize_subcells"]["finished"] = False
    (copy / files.STAGE_RECORDS).write_text(json.dumps(records))
    (copy / files.SUBCELLS_RELAXED).rename(copy / files.CHECKPOINT)  # its relaxations so far
    code, _, stderr = cli("resume", str(copy))
    assert code == 0, stderr
    text = " ".join(stderr.split())
    assert "crystallize_subcells runs again: its settings or inputs changed" in text
    assert "subcells were relaxed before the stop" not in text  # the checkpoint was not taken
    assert "skipping run_melt_quench" in text


def test_a_fixed_budget_relaxation_does_not_depend_on_the_rule():
    """Stage 4 reads the rule and the matching tolerances only when it relaxes in rounds (auto, or a
    reserve); a fixed budget's relaxations are kept when only --rule changes."""
    smoke, quick = preset_settings("Cu", "smoke"), preset_settings("Cu", "quick")
    relax = stage("crystallize_subcells")
    assert "rule" not in relax.declared(smoke) and "rule" in relax.declared(quick)
    with pytest.raises(UndeclaredAccess):
        _ = DeclaredSettings(smoke, relax).rule


def test_a_section_that_gains_a_field_keeps_earlier_records(tmp_path):
    from amorph.stages import same_fingerprint

    current = {"settings": {"relax": {"fmax": 0.05, "max_steps": 500, "fusion_distance": 1.5, "energy_drop_limit": 2.0,
                                      "engine": "batched"}}, "inputs": {}}
    recorded = json.loads(json.dumps(current))
    del recorded["settings"]["relax"]["energy_drop_limit"]  # recorded before the field existed: its default held
    assert same_fingerprint(recorded, current)
    recorded["settings"]["relax"]["fmax"] = 0.1
    assert not same_fingerprint(recorded, current)


def test_the_fingerprint_names_the_model_loaded(cu_smoke_run):
    run, _ = cu_smoke_run
    records = json.loads((run / files.STAGE_RECORDS).read_text())["stages"]
    assert records["run_melt_quench"]["fingerprint"]["settings"]["potential"] == "emt (emt analytic)"


def test_a_run_from_before_the_cell_could_grow_resumes_as_it_ran(cu_smoke_run, tmp_path, cli):
    """A run folder recorded before --grow-to existed is read back with the cell as it was (grow_to 0,
    settings.AS_BEFORE), not with today's default, and none of its stages runs again."""
    import shutil

    from amorph.settings import RunSettings
    from amorph.stages import same_fingerprint

    run, _ = cu_smoke_run
    copy = tmp_path / "old"
    shutil.copytree(run, copy)
    config = json.loads((copy / files.CONFIG).read_text())
    del config["settings"]["packing"]["grow_to"]
    (copy / files.CONFIG).write_text(json.dumps(config))
    records = json.loads((copy / files.STAGE_RECORDS).read_text())
    for record in records["stages"].values():
        record["fingerprint"]["settings"].get("packing", {}).pop("grow_to", None)
    (copy / files.STAGE_RECORDS).write_text(json.dumps(records))
    assert RunSettings.from_dict(config["settings"]).packing.grow_to == 0
    packing = {"target_atoms": 100, "volume_factor": 1.15}
    assert not same_fingerprint({"settings": {"packing": packing}, "inputs": {}},
                                {"settings": {"packing": {**packing, "grow_to": 250}}, "inputs": {}})
    code, _, stderr = cli("resume", str(copy))
    assert code == 0, stderr
    text = " ".join(stderr.split())
    for entry in STAGES:  # the ones that read config.json run again only because this test rewrote it
        assert (f"{entry.name} runs again" in text) == (files.CONFIG in entry.reads), entry.name
