import math

import numpy as np
from ase import Atoms
from ase.build import bulk
from ase.calculators.emt import EMT

from amorph.md.relax import RelaxResult, invalid_reason, relax


def test_relaxation_lowers_energy_and_converges():
    atoms = bulk("Cu", "fcc", a=3.8, cubic=True)
    atoms.rattle(0.05, seed=1)
    result = relax(atoms, EMT(), fmax=0.01, max_steps=300)
    assert result.converged
    assert result.final_energy < result.initial_energy
    assert abs(result.atoms.cell.lengths()[0] - 3.59) < 0.05  # EMT's Cu lattice constant
    assert invalid_reason(result, atoms.get_volume(), 1.5, -10.0) == ""


def _result(atoms, e0=0.0, e1=-1.0, error=""):
    return RelaxResult(atoms, e0, e1, 10, True, error)


def test_invalid_reasons():
    good = bulk("Cu", "fcc", a=3.6, cubic=True)
    v = good.get_volume()
    assert invalid_reason(_result(good, 0.0, 1.0), v, 1.5, -10) == "energy went up"
    assert "not finite" in invalid_reason(_result(good, 0.0, math.nan), v, 1.5, -10)
    assert "sanity floor" in invalid_reason(_result(good, 0.0, -100.0), v, 1.5, -10)
    assert "failed" in invalid_reason(_result(good, error="RuntimeError: boom"), v, 1.5, -10)
    fused = Atoms("Cu2", positions=[[0, 0, 0], [0.8, 0, 0]], cell=[5, 5, 5], pbc=True)
    assert "fused" in invalid_reason(_result(fused), fused.get_volume(), 1.5, -10)
    exploded = good.copy()
    exploded.set_cell(good.cell * 3, scale_atoms=True)
    assert "blew up" in invalid_reason(_result(exploded), v, 1.5, -10)
    # fusion distance for light pairs is 0.6 x sum of covalent radii when smaller than 1.5 A
    h2 = Atoms("H2", positions=[[0, 0, 0], [0.74, 0, 0]], cell=[6, 6, 6], pbc=True)
    assert invalid_reason(_result(h2), h2.get_volume(), 1.5, -10) == ""
    assert np.isclose(0.6 * 2 * 0.31, 0.372)


def test_a_volume_that_runs_away_is_a_result_with_its_energy(monkeypatch):
    """The one-at-a-time path stops FIRE when the cell's volume leaves VOLUME_LIMIT; it must return the
    cell and its energy there (it once read the energy after taking the calculator away, and raised)."""
    from amorph.md import relax as relax_module

    monkeypatch.setattr(relax_module, "VOLUME_LIMIT", 1.0001)  # any change of volume counts as running away
    squeezed = bulk("Cu", "fcc", a=3.3, cubic=True)
    result = relax_module.relax(squeezed, EMT(), 0.01, 50)
    assert not result.converged and result.steps >= 1 and math.isfinite(result.final_energy)
    assert result.atoms.calc is None and abs(result.atoms.get_volume() / squeezed.get_volume() - 1) > 1e-4


def test_close_pairs_in_an_orthorhombic_cell_are_neighbor_lists():
    """The periodic k-d tree (every melt-quench cell) finds the pairs ASE's neighbor_list finds, at the
    same distances, atoms near the faces included; a sheared cell goes to neighbor_list itself."""
    from ase.neighborlist import neighbor_list

    from amorph.md.relax import close_pairs

    rng = np.random.default_rng(4)
    for trial in range(20):
        box = rng.uniform(5.0, 9.0, 3)
        positions = rng.uniform(-0.5, 1.5, (40, 3)) * box  # unwrapped, as MD leaves them
        positions[:4] = box * np.array([[0, 0, 0], [1, 1, 1], [1e-12, 0.5, 0.5], [1 - 1e-12, 0.5, 0.5]])
        atoms = Atoms("Cu40", positions=positions, cell=box, pbc=True)
        i, j, d = close_pairs(atoms, 1.6)
        ref_i, ref_j, ref_d = neighbor_list("ijd", atoms, 1.6, self_interaction=False)
        ours = {(min(a, b), max(a, b)): x for a, b, x in zip(i, j, d)}
        theirs = {(min(a, b), max(a, b)): x for a, b, x in zip(ref_i, ref_j, ref_d)}
        assert ours.keys() == theirs.keys(), trial
        assert all(abs(ours[k] - theirs[k]) < 1e-9 for k in ours)
    sheared = Atoms("Cu2", positions=[[0, 0, 0], [1.0, 0, 0]], cell=[[6, 0, 0], [2, 6, 0], [0, 0, 6]], pbc=True)
    assert len(close_pairs(sheared, 1.5)[2]) == 2  # neighbor_list's (i, j) and (j, i)
