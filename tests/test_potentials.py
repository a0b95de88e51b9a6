import time

import numpy as np
import pytest
from ase.build import bulk

from amorph.errors import AmorphError
from amorph.md import potentials
from amorph.md.potentials import load_potential


def test_emt_refuses_elements_it_does_not_cover():
    pot = load_potential("emt")
    pot.check_covers(["Cu"])
    with pytest.raises(AmorphError, match="O, Ti"):
        pot.check_covers(["O", "Ti"])


def test_unknown_potential_and_device():
    with pytest.raises(AmorphError, match="unknown potential"):
        load_potential("lj")
    with pytest.raises(AmorphError):
        load_potential("chgnet", device="tpu")


def test_chgnet_loads_offline_and_gives_stress_in_ev_per_a3():
    pot = load_potential("chgnet", "cpu")
    assert pot.name == "chgnet" and pot.checksum.startswith("sha256:")
    assert {"Ti", "O", "Si", "Pu"} <= pot.elements
    atoms = bulk("Si", "diamond", a=5.9)  # expanded: tensile
    atoms.calc = pot.make_calculator()
    stress = atoms.get_stress()
    assert np.all(np.abs(stress[:3]) < 1.0)  # eV/A^3 (GPa numbers would be ~10)
    assert atoms.get_potential_energy() / len(atoms) < -4.0


def test_matgl_model_from_a_directory(tiny_matgl_model):
    pot = load_potential(f"matgl:{tiny_matgl_model}", "cpu")
    assert pot.elements == frozenset({"Cu", "O", "Si", "Ti"})
    assert pot.name.startswith("matgl:")
    with pytest.raises(AmorphError, match="Al"):
        pot.check_covers(["Al", "O"])
    atoms = bulk("Cu", "fcc", a=3.6) * (2, 1, 1)
    atoms.calc = pot.make_calculator()
    assert np.isfinite(atoms.get_potential_energy()) and atoms.get_stress().shape == (6,)


def test_matgl_directory_missing_files(tmp_path):
    (tmp_path / "model.json").write_text("{}")
    with pytest.raises(AmorphError, match="missing model.pt, state.pt"):
        load_potential(f"matgl:{tmp_path}", "cpu")


def test_offline_named_matgl_model_fails_fast(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    t0 = time.perf_counter()
    with pytest.raises(AmorphError, match="cannot be reached"):
        load_potential("matgl:Some-Model-Not-Cached-PES", "cpu")
    assert time.perf_counter() - t0 < 5


def test_auto_falls_back_to_chgnet_offline_within_seconds(monkeypatch):
    monkeypatch.setattr(potentials, "_matgl_cached_files", lambda name: None)
    monkeypatch.setattr(potentials, "hub_reachable", lambda timeout=2.0: False)
    pot = load_potential("auto", "cpu")
    assert pot.name == "chgnet"
    assert any("using chgnet" in note for note in pot.notes)

