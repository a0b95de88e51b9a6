"""A potential that gives nonsense on the formula's reference crystal is refused before any MD."""

from __future__ import annotations

import numpy as np
import pytest

from amorph.md.sanity import judge

FINE = (np.zeros((2, 3)), np.zeros((3, 3)))


@pytest.mark.parametrize(
    "energy,forces,stress,problem",
    [
        (-18.8, *FINE, None),  # -9.4 eV/atom: TiO2 under CHGNet
        (-42.0, *FINE, "-21.00 eV/atom lies outside -15 to 5 eV/atom"),  # anatase under mismatched matgl weights
        (float("nan"), *FINE, "its energy is not finite"),
        (-18.8, np.array([[np.inf, 0, 0], [0, 0, 0]]), np.zeros((3, 3)), "its forces or stress are not finite"),
        (-18.8, np.array([[3.3, 0, 0], [0, 0, 0]]), np.zeros((3, 3)), None),  # gamma-WO3 as built, under CHGNet
        (-18.8, np.array([[12.0, 0, 0], [0, 0, 0]]), np.zeros((3, 3)), "a force of 12.00 eV/A exceeds 10 eV/A"),
    ],
)
def test_judge(energy, forces, stress, problem):
    assert judge(energy, forces, stress, 2).problem == problem


@pytest.fixture(scope="module")
def scaled_model(tiny_matgl_model, tmp_path_factory):
    """The tiny TensorNet with every weight x30: it loads without complaint and gives 8e6 eV/atom on fcc Cu."""
    import matgl
    import torch

    potential = matgl.load_model(tiny_matgl_model)
    with torch.no_grad():
        for parameter in potential.model.parameters():
            parameter.mul_(30.0)
    path = tmp_path_factory.mktemp("models") / "scaled-tensornet"
    potential.save(path)
    return path


def test_nonsense_potential_is_refused_before_anything_is_written(cli, tmp_path, scaled_model):
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", f"matgl:{scaled_model}", "--device", "cpu", "--preset", "smoke",
                          "--out", str(out))
    assert code == 2 and stderr.count("\n") == 1, stderr
    assert f"potential 'matgl:{scaled_model}" in stderr or "potential 'matgl:" in stderr
    assert "gives nonsense on fcc Cu:" in stderr and "eV/atom lies outside -15 to 5 eV/atom" in stderr
    assert "--skip-potential-check" in stderr
    assert not out.exists()


def test_the_check_can_be_skipped_and_a_sane_potential_passes(cli, tmp_path, scaled_model):
    out = tmp_path / "skipped"
    code, _, stderr = cli("predict", "Cu", "--potential", f"matgl:{scaled_model}", "--device", "cpu", "--preset", "smoke",
                          "--atoms", "8", "--md-steps", "1", "--max-subcells", "2", "--relax-steps", "2", "--skip-potential-check",
                          "--out", str(out))
    assert "gives nonsense" not in stderr and (out / "start.extxyz").exists()
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--md-steps", "5", "--max-subcells", "2",
                          "--out", str(tmp_path / "emt"))
    assert code == 0, stderr
    assert "potential check on fcc: -0.005 eV/atom, largest force 0.000 eV/A" in stderr


def test_chgnet_passes_the_check_on_every_built_in_ground_state():
    """The check must not refuse a sane potential on real crystals: a limit of 1 eV/A refused WO3,
    MoO3, V2O5, Si3N4 and CaCO3 under CHGNet (their experimental cells sit off CHGNet's minimum)."""
    from pymatgen.io.ase import AseAtomsAdaptor

    from amorph.matching.database import ground_state, known_formulas
    from amorph.md.evaluators import make_evaluator
    from amorph.md.potentials import load_potential
    from amorph.md.sanity import check_potential

    evaluate = make_evaluator(load_potential("chgnet", "cpu")).evaluate
    checked = 0
    for formula in known_formulas():
        reference = ground_state(formula)
        if reference is not None:
            check_potential("chgnet", evaluate, AseAtomsAdaptor.get_atoms(reference.structure), f"{reference.name} {formula}")
            checked += 1
    assert checked >= 50
