"""The pieces each change should touch in one place: flags, packed batches, the in-flight queue, the
subcells.csv record, the light CLI path and the public API."""

from __future__ import annotations

import math
import subprocess
import sys
import textwrap

import pytest
import torch
from ase.build import bulk

from amorph.md.inflight import InFlightQueue
from amorph.md.state import CellBatch, atom_cells, cell_starts
from amorph.results.subcells import COLUMNS, SubcellRecord
from amorph.settings import FLAGS, PRESETS, RunSettings, flag, preset_settings, validate


def _predict_command():
    import typer

    from amorph.cli.main import app

    group = typer.main.get_command(app)
    return group.commands["predict"]  # type: ignore[attr-defined]


def test_every_flag_is_stated_once_for_help_and_validation():
    options = {opt: param for param in _predict_command().params for opt in param.opts}
    for setting in FLAGS:
        if setting.cli:
            assert setting.option in options, setting.option
            assert options[setting.option].help == setting.help
    for setting in FLAGS:
        assert setting.value(RunSettings("Cu")) is not None  # names a real field


@pytest.mark.parametrize("setting", [f for f in FLAGS if f.allowed == "positive"], ids=lambda f: f.option)
def test_validation_names_the_flag(setting):
    from dataclasses import replace

    from amorph.errors import AmorphError

    base = RunSettings("Cu")
    section = getattr(base, setting.section)
    broken = replace(base, **{setting.section: replace(section, **{setting.name: -1})})
    with pytest.raises(AmorphError, match=setting.option):
        validate(broken)


def test_presets_are_changes_from_the_defaults():
    assert PRESETS["standard"] == {}
    assert preset_settings("Cu", "standard") == RunSettings("Cu", preset="standard")
    quick = preset_settings("Cu", "quick")
    assert (quick.packing.target_atoms, quick.subcells.n_max, quick.relax.max_steps) == (48, 12, 150)
    assert (quick.melt_quench.replicas, quick.melt_quench.steps_per_stage, quick.melt_quench.ramp_factor) == (4, 125, 2.0)
    assert quick.relax.fmax == RunSettings("Cu").relax.fmax  # untouched fields keep the default
    assert flag("--t-high").help == "Melt temperature, K."


def test_packed_cells_select_slice_extend():
    cells = [bulk("Cu"), bulk("Cu") * (2, 1, 1), bulk("Cu") * (3, 1, 1)]
    batch = CellBatch.from_atoms(cells, keys=[10, 11, 12])
    assert batch.counts.tolist() == [1, 2, 3]
    assert cell_starts(batch.counts).tolist() == [0, 1, 3]
    assert atom_cells(batch.counts).tolist() == [0, 1, 1, 2, 2, 2]
    kept = batch.select(torch.tensor([True, False, True]))
    assert kept.counts.tolist() == [1, 3] and kept.keys == [10, 12]
    assert torch.equal(kept.positions, torch.cat([batch.positions[:1], batch.positions[3:]]))
    middle = batch.slice(1, 2)
    assert middle.n_atoms == 2 and middle.keys == [11]
    joined = kept.extend(middle)
    assert joined.counts.tolist() == [1, 3, 2] and joined.keys == [10, 12, 11]
    assert [len(a) for a in joined.to_atoms()] == [1, 3, 2]


def test_in_flight_queue_admits_retires_and_restores_order():
    done = []
    queue: InFlightQueue[str] = InFlightQueue([4, 4, 4, 10], on_done=lambda i, r: done.append(i))
    assert queue.admit(0, 0, max_atoms=8) == [0, 1]
    assert queue.admit(8, 2, max_atoms=8) == []  # full
    queue.retire(1, "b")
    assert queue.admit(4, 1, max_atoms=8) == [2]
    queue.retire(0, "a")
    queue.retire(2, "c")
    assert queue.admit(0, 0, max_atoms=8) == [3]  # an empty batch takes a cell larger than the pass
    assert not queue.finished
    queue.retire(3, "d")
    assert queue.finished and queue.in_order() == ["a", "b", "c", "d"] and done == [1, 0, 2, 3]
    capped: InFlightQueue[str] = InFlightQueue([1] * 5, in_flight=2)
    assert capped.admit(0, 0, max_atoms=1000) == [0, 1]


def test_subcell_record_round_trips_through_csv(cu_smoke_run):
    import csv

    out, _ = cu_smoke_run
    with open(out / "subcells.csv", newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames or ()) == COLUMNS
        rows = list(reader)
    records = [SubcellRecord.from_row(row) for row in rows]
    assert all(isinstance(r.valid, bool) and isinstance(r.relax_steps, int) for r in records)
    unknown = [r for r in records if r.valid and not r.known_polymorph]
    known = [r for r in records if r.known_polymorph]
    assert known and all(r.structure_type == "" and math.isnan(r.fingerprint_distance) for r in known)
    assert all(r.structure_type and r.fingerprint_distance >= 0 for r in unknown)
    for record, row in zip(records, rows):
        again = {k: ("" if isinstance(v, float) and math.isnan(v) else str(v)) for k, v in record.to_row().items()}
        assert again == row
    with pytest.raises(ValueError):
        SubcellRecord.from_row(rows[0] | {"valid": "yes"})


def _fresh_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=120)


def test_a_typo_is_answered_before_torch_is_imported(tmp_path):
    done = _fresh_python(
        f"""
        import sys
        from amorph.cli.main import main
        for argv in (["predict", "tio2"], ["predict", "TiO2", "--atoms", "-3"], ["predict", "TiO2", "--db", "{tmp_path}/nope"],
                     ["predict", "TiO2", "--potential", "matgl:{tmp_path}/nope"], ["compare", "Xx2"]):
            sys.argv = ["amorph", *argv]
            try:
                main()
            except SystemExit as exit:
                assert exit.code == 2, (argv, exit.code)
        heavy = sorted(m for m in ("torch", "matgl", "chgnet", "pandas", "ase.io") if m in sys.modules)
        print("heavy:", heavy)
        """
    )
    assert done.returncode == 0, done.stderr
    assert "heavy: []" in done.stdout
    assert done.stderr.count("amorph: error:") == 5


def test_import_amorph_is_light_and_has_no_side_effects():
    done = _fresh_python(
        """
        import os, sys
        before = dict(os.environ)
        import amorph
        assert dict(os.environ) == before, "import amorph changed the environment"
        assert "torch" not in sys.modules and "numpy" not in sys.modules
        from amorph import RunSettings, predict, preset_settings
        assert callable(predict) and preset_settings("Cu", "smoke").preset == "smoke" and RunSettings
        print("ok")
        """
    )
    assert done.returncode == 0 and "ok" in done.stdout, done.stderr


def test_a_run_starts_with_one_blas_thread():
    done = _fresh_python(
        """
        import os
        os.environ.pop("OPENBLAS_NUM_THREADS", None)
        import numpy, threadpoolctl
        from amorph.threads import one_blas_thread
        one_blas_thread()
        pools = [p for p in threadpoolctl.threadpool_info() if p["internal_api"] == "openblas"]
        print(os.environ["OPENBLAS_NUM_THREADS"], sorted({p["num_threads"] for p in pools}))
        """
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split()[0] == "1" and "[1]" in done.stdout


def test_an_unreadable_subcells_row_names_file_line_and_column(cu_smoke_run):
    from amorph.errors import AmorphError
    from amorph.results.rundir import RunDir
    from amorph.results.subcells import read_records

    out, _ = cu_smoke_run
    rows = RunDir(out).read_rows("subcells.csv")
    assert len(read_records(rows, "subcells.csv")) == len(rows)
    broken = [*rows[:2], rows[2] | {"relax_steps": "many"}]
    with pytest.raises(AmorphError, match=r"subcells.csv line 4: column relax_steps"):
        read_records(broken, "subcells.csv")
    old = [{k: v for k, v in row.items() if k != "cut_push"} for row in rows]
    with pytest.raises(AmorphError, match="no column cut_push"):
        read_records(old, "subcells.csv")
    # a column added with a default (stacking_variant) may be missing: files written before it are read
    before = [{k: v for k, v in row.items() if k != "stacking_variant"} for row in rows]
    assert [r.stacking_variant for r in read_records(before, "subcells.csv")] == [False] * len(rows)


def test_joining_cells_with_and_without_keys_is_refused():
    cells = [bulk("Cu"), bulk("Cu")]
    with pytest.raises(ValueError, match="keys"):
        CellBatch.from_atoms(cells[:1], keys=[1]).extend(CellBatch.from_atoms(cells[1:]))


def test_every_setting_is_declared_on_its_field():
    """amorph.settings: each field of RunSettings and of every section carries its Declaration (flag,
    meaning, unit, range), so FLAGS, --help, validation and error messages have one source."""
    from dataclasses import fields

    from amorph.settings import SECTIONS

    sections = [RunSettings] + [type(getattr(RunSettings("Cu"), s)) for s in SECTIONS]
    undeclared = [f"{cls.__name__}.{f.name}" for cls in sections for f in fields(cls)
                  if f.name not in SECTIONS and "declaration" not in f.metadata]
    assert undeclared == []
    assert len({f.key for f in FLAGS}) == len(FLAGS)


def test_the_readme_preset_table_is_the_presets():
    from pathlib import Path

    from amorph.settings import preset_table

    assert preset_table() in (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_flags_set_their_fields_as_declared():
    from amorph.settings import apply_options

    base = preset_settings("Cu", "quick")
    changed = apply_options(base, {"--keep-cut-contacts": True, "--n-max": 6, "--md-steps": 40, "--t-low": None,
                                   "--any-composition": False, "--db": ("builtin",)})
    assert changed.subcells.push_cut_contacts is False  # inverted: the switch turns the setting off
    assert (changed.subcells.n_max, changed.subcells.fit_polymorphs) == (6, False)  # --n-max implies no fitting
    assert changed.melt_quench.steps_per_stage == 40 and changed.databases == ("builtin",)
    assert changed.melt_quench.t_low == base.melt_quench.t_low and changed.subcells.any_composition is False


def test_the_api_refuses_what_the_cli_refuses():
    """A cross-field rule lives in validate(), which prepare() runs for the Python API too: 'auto' and a
    reserve exclude each other (the API used to drop the reserve without a word)."""
    from dataclasses import replace

    from amorph.errors import AmorphError

    quick = preset_settings("Cu", "quick")
    auto_with_reserve = replace(quick, subcells=replace(quick.subcells, adaptive=True))
    with pytest.raises(AmorphError, match="--more-if-inconclusive needs a whole-number --max-subcells"):
        validate(auto_with_reserve)
    validate(replace(auto_with_reserve, subcells=replace(auto_with_reserve.subcells, more_if_inconclusive=0)))


def test_a_benchmark_names_the_code_and_machine_it_measured_on():
    """Every measurement script prints `measured: amorph <commit>, <date>, <machine>` first, so a
    number copied into docs/ says what made it; config.json records the same commit."""
    import re
    from pathlib import Path

    from amorph.results.provenance import library_versions, measured_on

    line = measured_on()
    assert re.match(r"measured: amorph (\w{7,}( \+ changes)?|unknown \(.*\)), \d{4}-\d\d-\d\dT", line), line
    assert line.split(",")[0].removeprefix("measured: amorph ") == library_versions()["amorph_commit"]
    root = Path(__file__).resolve().parents[1]
    tools = {"rerun.py", "train_stand_in_tensornet.py", "accuracy.py"}  # tools, and accuracy.py names each run's own
    for script in sorted((root / "benchmarks").glob("*.py")):
        if script.name not in tools:
            assert "print(measured_on())" in script.read_text(), script.name
    done = subprocess.run([sys.executable, str(root / "benchmarks" / "md_host_cost.py"), "--steps", "20"], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("measured: amorph ") and done.stdout.strip().splitlines()[-1].startswith("ratio: ")
