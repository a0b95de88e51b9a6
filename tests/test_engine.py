"""The pieces under the batched engine: device neighbour lists (and their reuse), the vectorised
FIRE + Frechet cell filter, and the memory budget that sizes GPU passes."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from ase.build import bulk
from pymatgen.optimization.neighbors import find_points_in_spheres
from scipy.linalg import expm_frechet

from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import AseEvaluator, BatchEvaluator, BatchResult, CellBatch, MatglEvaluator
from amorph.md.fire import expm_frechet_adjoint
from amorph.md.memory import MemoryBudget
from amorph.md.neighbours import SkinNeighbours, periodic_edges
from amorph.md.potentials import load_potential


def _random_cells(seed: int, n_cells: int = 6):
    """Small sheared cells (1-12 atoms) with coordinates outside [0, 1), as mid-relaxation subcells are."""
    rng = np.random.default_rng(seed)
    fracs, lattices, counts = [], [], []
    for _ in range(n_cells):
        n = int(rng.integers(1, 13))
        lattices.append(np.diag(rng.uniform(2.5, 6.0, 3)) + rng.uniform(-1.5, 1.5, (3, 3)))
        fracs.append(rng.uniform(-1.5, 2.5, (n, 3)))
        counts.append(n)
    return fracs, lattices, counts


def _as_set(edges, shifts, lo: int = 0) -> set:
    return {(i - lo, j - lo, *map(int, np.rint(s))) for (i, j), s in zip(edges.T.tolist(), shifts.tolist())}


def test_periodic_edges_equal_pymatgen_for_small_sheared_cells():
    fracs, lattices, counts = _random_cells(0)
    cutoff = 5.0
    edges, shifts = periodic_edges(
        torch.tensor(np.concatenate(fracs)), torch.tensor(np.array(lattices)), torch.tensor(counts), cutoff
    )
    start = 0
    for frac, lattice, n in zip(fracs, lattices, counts):
        cart = frac @ lattice
        src, dst, images, dist = find_points_in_spheres(cart, cart, r=cutoff, pbc=np.array([1, 1, 1]), lattice=lattice, tol=1e-8)
        real = (src != dst) | (dist > 1e-8)
        expected = {(int(i), int(j), *map(int, img)) for i, j, img in zip(src[real], dst[real], images[real])}
        mine = (edges[0] >= start) & (edges[0] < start + n)
        assert _as_set(edges[:, mine], shifts[mine], start) == expected
        assert len(expected) > n * n  # many images: the cells are smaller than the cutoff
        start += n


def test_skin_lists_are_reused_and_stay_exact():
    fracs, lattices, counts = _random_cells(1)
    frac = torch.tensor(np.concatenate(fracs))
    lattice = torch.tensor(np.array(lattices))
    count = torch.tensor(counts)
    keys = list(range(len(counts)))
    lists = SkinNeighbours(5.0, skin=1.0)
    lists.edges(frac, lattice, count, keys)
    assert lists.rebuilt == len(counts)
    rng = np.random.default_rng(2)
    for _ in range(5):  # small moves and strains: reuse, and the same edges as a fresh list
        frac = frac + torch.tensor(rng.normal(0, 0.005, frac.shape))
        lattice = lattice @ (torch.eye(3, dtype=torch.float64) + torch.tensor(rng.normal(0, 0.003, (len(counts), 3, 3))))
        edges, shifts = lists.edges(frac, lattice, count, keys)
        fresh_edges, fresh_shifts = periodic_edges(frac, lattice, count, 5.0)
        assert _as_set(edges, shifts) == _as_set(fresh_edges, fresh_shifts)
    assert lists.rebuilt == len(counts)
    frac = frac + torch.tensor(rng.normal(0, 0.6, frac.shape))  # large moves: every list is rebuilt
    edges, shifts = lists.edges(frac, lattice, count, keys)
    assert _as_set(edges, shifts) == _as_set(*periodic_edges(frac, lattice, count, 5.0))
    assert lists.rebuilt > len(counts)
    lists.forget(keys)
    assert not lists.lists


def test_a_collapsed_cell_is_refused_not_listed_forever():
    lattice = torch.tensor([[[4.0, 0, 0], [0, 4.0, 0], [0, 0, 0.01]]], dtype=torch.float64)
    with pytest.raises(ValueError, match="collapsed"):
        periodic_edges(torch.zeros(1, 3, dtype=torch.float64), lattice, torch.tensor([1]), 5.0)


def test_expm_frechet_adjoint_matches_scipy():
    rng = np.random.default_rng(3)
    x, g = rng.normal(0, 0.2, (3, 3)), rng.normal(size=(3, 3))
    expected = np.array([[np.sum(expm_frechet(x, np.eye(3)[[m]].T @ np.eye(3)[[n]], compute_expm=False) * g)
                          for n in range(3)] for m in range(3)])
    ours = expm_frechet_adjoint(torch.tensor(x)[None], torch.tensor(g)[None])[0].numpy()
    np.testing.assert_allclose(ours, expected, atol=1e-12)


def test_matgl_graph_on_device_with_reuse_gives_the_calculators_answers(tiny_matgl_model):
    potential = load_potential(f"matgl:{tiny_matgl_model}", "cpu")
    cells = [bulk("Cu", "fcc", a=3.7) * (2, 1, 1), bulk("Cu", "fcc", a=3.6, cubic=True)]
    for k, c in enumerate(cells):
        c.rattle(0.05, seed=k)
    evaluator = MatglEvaluator(potential, max_atoms=100)
    batch = CellBatch.from_atoms(cells)
    batch.keys = [10, 11]
    first = evaluator.evaluate_batch(batch)
    again = evaluator.evaluate_batch(batch)  # reused lists
    assert evaluator.neighbours.rebuilt == 2
    calculator = potential.make_calculator()
    start = 0
    for k, cell in enumerate(cells):
        atoms = cell.copy()
        atoms.calc = calculator
        assert abs(float(first.energies[k]) - atoms.get_potential_energy()) < 1e-5
        assert abs(float(again.energies[k]) - atoms.get_potential_energy()) < 1e-5
        np.testing.assert_allclose(again.forces.numpy()[start : start + len(cell)], atoms.get_forces(), atol=1e-5)
        np.testing.assert_allclose(again.stresses.numpy()[k], atoms.get_stress(voigt=False), atol=1e-6)
        start += len(cell)


def test_non_finite_forces_end_the_cell_with_an_error():
    class Broken(BatchEvaluator):
        max_atoms = 100

        def evaluate_batch(self, batch: CellBatch) -> BatchResult:
            n, b = batch.positions.shape[0], batch.cells.shape[0]
            forces = batch.positions.new_zeros(n, 3)
            forces[0, 0] = float("nan")  # the first cell's first atom
            return BatchResult(batch.positions.new_zeros(b), forces, batch.positions.new_zeros(b, 3, 3))

    results = relax_many([bulk("Cu") * (2, 1, 1), bulk("Cu")], Broken(), 0.05, 10)
    assert results[0].error.startswith("non-finite") and not results[0].converged
    assert results[1].converged and not results[1].error


def test_ase_and_packed_paths_agree_on_mixed_sizes():
    emt = load_potential("emt")
    cells = [bulk("Cu", "fcc", a=3.7) * r for r in [(1, 1, 1), (2, 1, 1), (3, 1, 1)]]
    for k, c in enumerate(cells):
        c.rattle(0.05, seed=k)
    evaluator = AseEvaluator(emt)
    packed = evaluator.evaluate_batch(CellBatch.from_atoms(cells))
    listed = evaluator.evaluate(cells)
    assert packed.forces.shape == (6, 3)
    np.testing.assert_allclose(packed.energies.numpy(), [e.energy for e in listed])


class _FakeMemory:
    def __init__(self, free: int, peak: int):
        self.free, self.peak, self.passes = free, peak, 0

    def start_pass(self) -> None:
        self.passes += 1

    def pass_peak_bytes(self) -> int:
        return self.peak

    def free_bytes(self) -> int:
        return self.free


def test_memory_budget_sizes_passes_from_free_memory_and_edges():
    budget = MemoryBudget(_FakeMemory(free=10_000_000, peak=0), headroom=0.5, floor=1)
    assert budget.max_atoms(96) == 96  # nothing seen yet
    budget.observe(atoms=100, edges=4000, peak_bytes=400_000)  # 100 B per edge, 40 edges per atom
    assert budget.max_atoms(96) == int(0.5 * 10_000_000 / (100 * 40))
    budget.observe(atoms=100, edges=8000, peak_bytes=400_000)  # denser cells: fewer atoms fit
    assert budget.max_atoms(96) == int(0.5 * 10_000_000 / (100 * 80))


def test_matgl_evaluator_resizes_its_passes_from_the_device_memory(tiny_matgl_model):
    potential = load_potential(f"matgl:{tiny_matgl_model}", "cpu")
    memory = _FakeMemory(free=50_000_000, peak=2_000_000)
    evaluator = MatglEvaluator(potential, max_atoms=8, memory=memory)
    cells = [bulk("Cu", "fcc", a=3.6) * (2, 2, 2)]
    evaluator.evaluate(cells)
    assert memory.passes == 1 and evaluator.max_atoms != 8
    before = evaluator.max_atoms
    evaluator.out_of_memory(before)
    assert evaluator.max_atoms == before // 2 and evaluator.budget.headroom < 0.7


def test_a_large_cell_is_listed_in_blocks_with_the_same_edges(monkeypatch):
    import amorph.md.neighbours as neighbours

    fracs, lattices, counts = _random_cells(4, n_cells=1)
    args = (torch.tensor(np.concatenate(fracs)), torch.tensor(np.array(lattices)), torch.tensor(counts), 5.0)
    whole = _as_set(*periodic_edges(*args))
    monkeypatch.setattr(neighbours, "MAX_CANDIDATES", 50)  # forces one row (or a few) per block
    assert _as_set(*periodic_edges(*args)) == whole


def test_replicas_on_a_matgl_model_reuse_neighbour_lists_and_match_single_runs(tiny_matgl_model):
    from amorph.md.batched_md import EvaluatorCalculator, evaluator_forces
    from amorph.md.evaluators import new_keys
    from amorph.melt_quench import melt_quench, melt_quench_replicas
    from amorph.settings import MeltQuenchSettings

    potential = load_potential(f"matgl:{tiny_matgl_model}", "cpu")
    starts = [bulk("Cu", "fcc", a=3.7, cubic=True) for _ in range(2)]
    for k, s in enumerate(starts):
        s.rattle(0.05, seed=k)
    settings = MeltQuenchSettings(t_high=600, t_low=300, steps_per_stage=4)

    evaluator = MatglEvaluator(potential, max_atoms=100)
    keys = new_keys(2)
    batched = melt_quench_replicas(starts, settings, [EvaluatorCalculator(evaluator, key) for key in keys],
                                   evaluator_forces(evaluator, keys), [np.random.default_rng([5, k]) for k in range(2)])
    evaluator.forget(keys)
    single = [melt_quench(s, potential, settings, np.random.default_rng([5, k])) for k, s in enumerate(starts)]
    for (a, *_), (b, *_) in zip(batched, single):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-4)
    assert evaluator.neighbours.rebuilt < 2 * 12  # lists reused across MD steps
    assert not evaluator.neighbours.lists  # and dropped at the end
