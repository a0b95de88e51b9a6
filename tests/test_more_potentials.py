"""SevenNet, DIEP and any ASE calculator as --potential: offline, recorded, batched where the model batches.

SevenNet and DIEP ship their weights in their wheels (the README's set-up installs them through the
`potentials` extra), so these tests load the real models, with no network."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest
from ase.build import bulk

from amorph.errors import AmorphError
from amorph.md.potentials import check_potential_spec, load_potential


@pytest.mark.parametrize(
    "spec, needle",
    [
        ("sevennet:7net-9", "unknown SevenNet model '7net-9'"),
        ("sevennet:7net-mf-0:hse", "modals pbe, r2scan, not 'hse'"),
        ("sevennet:7net-0:pbe", "one fidelity"),
        ("ase:mace", "expected ase:MODULE:FACTORY"),
        ("ase:my-module:make", "expected ase:MODULE:FACTORY"),
        ("diep:/no/such/folder", "does not exist"),
        ("orb", "unknown potential 'orb'"),
    ],
)
def test_a_potential_that_cannot_be_named_is_refused_before_anything_loads(spec, needle):
    with pytest.raises(AmorphError, match=needle):
        check_potential_spec(spec)


def test_a_missing_optional_package_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "sevenn", None)  # import sevenn now raises ImportError
    with pytest.raises(AmorphError, match=r"needs the 'sevenn' package: pip install \"amorph\[potentials\]\""):
        load_potential("sevennet", "cpu")


def _cells() -> list:
    cells = []
    for a in (5.40, 5.47):
        cell = bulk("Si", "diamond", a=a) * (2, 1, 1)
        cell.rattle(0.05, seed=1)
        cells.append(cell)
    cu = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    cu.set_cell(cu.cell * [1.0, 1.02, 0.99], scale_atoms=True)
    cu.rattle(0.05, seed=2)
    return [*cells, cu]


@pytest.mark.parametrize("spec, evaluator", [("sevennet", "SevenNetEvaluator"), ("sevennet:7net-mf-0:r2scan", "SevenNetEvaluator"),
                                             ("diep", "MatglEvaluator")])
def test_shipped_potentials_load_offline_and_their_batches_agree_with_their_calculators(spec, evaluator):
    pytest.importorskip(spec.partition(":")[0].replace("sevennet", "sevenn"))
    from amorph.md.evaluators import AseEvaluator, make_evaluator

    potential = load_potential(spec, "cpu")
    assert potential.checksum.startswith("sha256:") and {"Si", "Cu", "Ti", "O"} <= potential.elements
    assert potential.training and potential.version
    batched = make_evaluator(potential)
    assert type(batched).__name__ == evaluator
    cells = _cells()
    for one, many in zip(AseEvaluator(potential).evaluate(cells), batched.evaluate(cells)):
        assert abs(one.energy - many.energy) < 1e-4 * len(one.forces)
        assert np.abs(one.forces - many.forces).max() < 1e-4
        assert np.abs(one.stress - many.stress).max() < 1e-5  # eV/A^3, ASE's sign
        assert np.abs(one.forces).max() > 0.05  # rattled: the comparison is not between zeros


def test_the_multi_fidelity_heads_differ_and_are_named():
    pytest.importorskip("sevenn")
    si = bulk("Si", "diamond", a=5.43)
    energies = {}
    for head in ("pbe", "r2scan"):
        potential = load_potential(f"sevennet:7net-mf-0:{head}", "cpu")
        assert potential.name == f"sevennet:7net-mf-0:{head}"
        si.calc = potential.make_calculator()
        energies[head] = si.get_potential_energy() / len(si)
    assert load_potential("sevennet:7net-mf-0", "cpu").name == "sevennet:7net-mf-0:pbe"  # the first head, said so
    assert energies["r2scan"] < energies["pbe"] - 1.0  # r2SCAN's energy scale lies eV/atom below PBE's


@pytest.fixture
def user_calculator_module(tmp_path, monkeypatch):
    """A module of the user's own with two factories of ASE calculators (EMT), one that takes a device."""
    (tmp_path / "my_calcs.py").write_text(
        "from ase.calculators.emt import EMT\n"
        "seen = []\n"
        "def plain():\n    return EMT()\n"
        "def on_device(device='cpu'):\n    seen.append(device)\n    return EMT()\n"
        "def broken():\n    raise RuntimeError('no model file')\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    return "my_calcs"


def test_any_ase_calculator_is_a_potential(user_calculator_module):
    potential = load_potential(f"ase:{user_calculator_module}:on_device", "cpu")
    assert potential.name == "ase:my_calcs:on_device" and "Cu" in potential.elements
    assert sys.modules["my_calcs"].seen == ["cpu"]  # the factory that takes a device gets the run's
    atoms = bulk("Cu", "fcc", a=3.61)
    atoms.calc = potential.make_calculator()
    assert atoms.get_potential_energy() == pytest.approx(-0.0057, abs=1e-3)  # EMT's fcc Cu at 3.61 A
    with pytest.raises(AmorphError, match=r"broken\(\) failed \(RuntimeError: no model file\)"):
        load_potential(f"ase:{user_calculator_module}:broken", "cpu")
    with pytest.raises(AmorphError, match="has no callable 'nothing'"):
        load_potential(f"ase:{user_calculator_module}:nothing", "cpu")
    with pytest.raises(AmorphError, match="cannot import 'no_such_module_here'"):
        load_potential("ase:no_such_module_here:make", "cpu")


def test_an_ase_calculator_runs_a_prediction_and_is_recorded(cli, tmp_path, user_calculator_module):
    out = tmp_path / "run"
    code, stdout, stderr = cli("predict", "Cu", "--potential", f"ase:{user_calculator_module}:plain", "--preset", "smoke",
                               "--atoms", "8", "--md-steps", "5", "--n-max", "4", "--max-subcells", "3",
                               "--relax-steps", "20", "--out", str(out), "--json")
    assert code == 0, stderr
    config = json.loads((out / "config.json").read_text())
    assert config["potential"]["used"] == "ase:my_calcs:plain"
    assert config["potential"]["weights_checksum"].startswith("unknown")  # EMT holds no torch model
    report = json.loads(stdout)
    assert report["potential"] == "ase:my_calcs:plain" and report["potential_details"]["description"].startswith("ASE calculator")


def test_diep_runs_a_prediction_offline_and_names_its_version(cli, tmp_path):
    pytest.importorskip("diep")
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Si", "--potential", "diep", "--device", "cpu", "--preset", "smoke",
                          "--atoms", "8", "--md-steps", "5", "--n-max", "4", "--max-subcells", "3",
                          "--relax-steps", "20", "--out", str(out), "--quiet")
    assert code == 0, stderr
    recorded = json.loads((out / "config.json").read_text())["potential"]
    assert recorded["used"] == "diep" and recorded["version"].startswith("diep ") and "r2SCAN".lower() in recorded["training_data"].lower()
    assert recorded["weights_checksum"] == load_potential("diep", "cpu").checksum


def test_potentials_lists_each_with_its_state(cli):
    code, stdout, stderr = cli("potentials", "--json")
    assert code == 0, stderr
    rows = {r["potential"]: r for r in json.loads(stdout)}
    assert rows["emt"]["offline"] and rows["emt"]["elements"] == 7 and not rows["emt"]["batched"]
    assert rows["chgnet"]["offline"] and rows["chgnet"]["checksum"] == load_potential("chgnet", "cpu").checksum
    for name in ("sevennet:7net-0", "sevennet:7net-mf-0:r2scan", "diep"):
        assert rows[name]["installed"] and rows[name]["offline"] and rows[name]["batched"], rows[name]
    assert "r2SCAN" in rows["sevennet:7net-mf-0:r2scan"]["training"]


def test_compare_under_two_potentials_shows_each_ordering_side_by_side(cli, tmp_path, user_calculator_module, monkeypatch):
    from amorph.cli import render

    out = tmp_path / "cmp"
    monkeypatch.setattr(render.stdout, "width", 200)
    code, stdout, stderr = cli("compare", "Cu", "--potential", "emt", "--potential", f"ase:{user_calculator_module}:plain",
                               "--out", str(out))
    assert code == 0, stderr
    saved = json.loads((out / "compare.json").read_text())
    assert saved["potentials"] == ["emt", "ase:my_calcs:plain"] and saved["lowest_agree"] and not saved["order_flips"]
    first, second = (saved["by_potential"][p] for p in saved["potentials"])
    assert [r["name"] for r in first] == [r["name"] for r in second]  # the same forces through two routes
    assert "every potential puts" in stdout and "ase:my_calcs:plain" in stdout


def test_an_order_that_flips_between_potentials_is_named():
    from amorph.compare import ordering_across

    def rows(*names):
        return [{"name": n, "energy_above_lowest": 0.01 * k} for k, n in enumerate(names)]

    found = ordering_across({"chgnet": rows("anatase", "rutile", "brookite"), "diep": rows("rutile", "anatase", "brookite")})
    assert found["lowest"] == {"chgnet": "anatase", "diep": "rutile"} and not found["lowest_agree"]
    assert found["order_flips"] == [{"pair": ["anatase", "rutile"], "lower": {"chgnet": "anatase", "diep": "rutile"}}]
    assert "disagree on the lowest: chgnet: anatase; diep: rutile" in found["summary"]
