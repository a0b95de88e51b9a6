"""D3(BJ) dispersion on top of a potential (`--potential X+d3`): the batched path against torch-dftd's
own calculator and against finite differences, the size of the correction, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
from ase.build import bulk
from ase.lattice.hexagonal import Graphite
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.errors import AmorphError
from amorph.matching.database import known_polymorphs
from amorph.md.dispersion import DispersionEvaluator
from amorph.md.engine import Relaxer
from amorph.md.evaluators import AseEvaluator, ChgnetEvaluator, make_evaluator, new_keys
from amorph.md.parallel_relax import worker_count
from amorph.md.potentials import load_potential
from amorph.md.state import CellBatch


def strained_cells():
    """Two rattled, sheared metal cells, one of them thinner than the D3 cutoff many times over."""
    rng = np.random.default_rng(3)
    cells = []
    for atoms in (bulk("Cu", "fcc", 3.6, cubic=True), bulk("Au", "fcc", 4.1) * (1, 1, 2)):
        atoms.rattle(0.05, seed=1)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * rng.standard_normal((3, 3))), scale_atoms=True)
        cells.append(atoms)
    return cells


@pytest.fixture(scope="module")
def emt_d3():
    return DispersionEvaluator(AseEvaluator(load_potential("emt")))


def test_spec_with_d3_names_the_correction():
    pot = load_potential("emt+d3")
    assert pot.name == "emt+d3" and pot.dispersion and pot.base_name == "emt"
    assert "D3(BJ)" in pot.description and pot.elements == load_potential("emt").elements
    with pytest.raises(AmorphError, match="unknown potential 'emt\\+d4'"):
        load_potential("emt+d4")


def test_batched_d3_equals_torch_dftd_calculator(emt_d3):
    """The batched D3 (our neighbour lists, our strain derivative) against torch-dftd's ASE calculator
    wrapped round EMT, which is what the one-cell-at-a-time path uses."""
    cells = strained_cells()
    reference = make_evaluator(load_potential("emt+d3")).evaluate(cells)
    plain = AseEvaluator(load_potential("emt")).evaluate(cells)
    keys = new_keys(len(cells))
    for batched in (emt_d3.evaluate(cells), emt_d3.evaluate(cells, keys), emt_d3.evaluate(cells, keys)):
        for ours, ref, emt in zip(batched, reference, plain):
            assert abs(ours.energy - emt.energy) > 0.1  # the correction is there at all
            assert ours.energy == pytest.approx(ref.energy, abs=1e-8)
            np.testing.assert_allclose(ours.forces, ref.forces, atol=1e-8)
            np.testing.assert_allclose(ours.stress, ref.stress, atol=1e-9)


def test_d3_forces_and_stress_are_derivatives_of_its_energy(emt_d3):
    atoms = strained_cells()[0]  # 4 atoms

    def energy(a) -> float:
        return float(emt_d3.dispersion(CellBatch.from_atoms([a])).energies[0])

    result = emt_d3.dispersion(CellBatch.from_atoms([atoms]))
    h = 1e-5
    for i, k in ((0, 1), (3, 2)):
        plus, minus = atoms.copy(), atoms.copy()
        plus.positions[i, k] += h
        minus.positions[i, k] -= h
        assert float(result.forces[i, k]) == pytest.approx(-(energy(plus) - energy(minus)) / (2 * h), rel=1e-5, abs=1e-8)
    for i, k in ((0, 0), (0, 2), (1, 1)):
        strain = np.zeros((3, 3))
        strain[i, k] = strain[k, i] = h / 2 if i != k else h
        plus, minus = atoms.copy(), atoms.copy()
        plus.set_cell(atoms.cell.array @ (np.eye(3) + strain), scale_atoms=True)
        minus.set_cell(atoms.cell.array @ (np.eye(3) - strain), scale_atoms=True)
        numeric = (energy(plus) - energy(minus)) / (2 * h) / atoms.get_volume()  # sigma_ik (eps_ik + eps_ki) V = dE
        assert float(result.stresses[0, i, k]) == pytest.approx(numeric, rel=1e-5, abs=1e-9)


def test_d3_binds_graphite_layers_by_tens_of_mev_per_atom(emt_d3):
    """Units and scale: the D3(BJ) part of graphite's interlayer binding (c 6.7 A against layers 10 A
    apart) is tens of meV/atom; PBE-D3(BJ) exfoliation energies are ~50-60 meV/atom."""

    def per_atom(c: float) -> float:
        g = Graphite("C", latticeconstant={"a": 2.46, "c": c})
        return float(emt_d3.dispersion(CellBatch.from_atoms([g])).energies[0]) / len(g)

    binding = per_atom(6.7) - per_atom(20.0)
    assert -0.090 < binding < -0.040


def test_chgnet_d3_batches_chgnet_then_adds_d3():
    pot = load_potential("chgnet+d3", "cpu")
    evaluator = make_evaluator(pot)
    assert isinstance(evaluator, DispersionEvaluator) and isinstance(evaluator.inner, ChgnetEvaluator)
    # relaxed in as many processes as CHGNet alone
    assert Relaxer(pot, "batched", 0.05, 10, 1000).workers == worker_count(1000, "cpu", "chgnet")
    rutile = AseAtomsAdaptor().get_atoms(known_polymorphs("TiO2")[0].structure)
    rutile.rattle(0.02, seed=2)
    [ours] = evaluator.evaluate([rutile])
    atoms = rutile.copy()
    atoms.calc = pot.make_calculator()  # CHGNet's calculator inside torch-dftd's
    assert ours.energy == pytest.approx(atoms.get_potential_energy(), abs=2e-3)
    np.testing.assert_allclose(ours.forces, atoms.get_forces(), atol=2e-3)


def test_predict_with_d3_from_the_cli(cli, tmp_path):
    out = tmp_path / "run"
    # a short run: D3's 21 A pair cutoff makes each step of a 32-atom cell cost what a hundred EMT steps
    # do, and the whole smoke preset took 6 minutes of the test suite; every stage still runs on emt+d3
    code, _, stderr = cli("predict", "Cu", "--potential", "emt+d3", "--preset", "smoke", "--seed", "0", "--md-steps", "20",
                          "--max-subcells", "6", "--relax-steps", "40", "--out", str(out), "--quiet")
    assert code == 0, stderr
    config = json.loads((out / "config.json").read_text())
    assert config["potential"]["used"] == "emt+d3" and "D3(BJ)" in config["potential"]["description"]
    assert json.loads((out / "report.json").read_text())["potential"] == "emt+d3"
