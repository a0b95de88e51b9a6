"""The batched engine: same relaxed structures as the one-at-a-time path, in-flight batching, memory
fallback, batched melt-quench replicas, adaptive sampling, and share confidence intervals."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from ase import Atoms
from ase.build import bulk
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.matching.database import known_polymorphs
from amorph.matching.statistics import separation, share_intervals
from amorph.matching.symmetry import find_symmetry
from amorph.md.batched_md import EvaluatorCalculator, evaluator_forces, replica_groups
from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import AseEvaluator, BatchEvaluator, ChgnetEvaluator, MatglEvaluator, make_evaluator, new_keys
from amorph.md.potentials import load_potential
from amorph.md.relax import relax
from amorph.melt_quench import melt_quench, melt_quench_replicas
from amorph.settings import MeltQuenchSettings


def _rattled_cells(seed: int = 0) -> list[Atoms]:
    """Small distorted Cu cells of different sizes (1, 2, 4, 8 atoms), like subcells after cutting."""
    rng = np.random.default_rng(seed)
    cells = []
    for repeat in [(1, 1, 1), (2, 1, 1), (2, 2, 1), (2, 2, 2)]:
        atoms = bulk("Cu", "fcc", a=3.7) * repeat
        atoms.rattle(0.08, seed=int(rng.integers(1000)))
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + rng.uniform(-0.03, 0.03, (3, 3))), scale_atoms=True)
        cells.append(atoms)
    return cells


def _assert_same(sequential, batched, tolerance_ev_per_atom: float) -> None:
    adaptor = AseAtomsAdaptor()
    for a, b in zip(sequential, batched):
        assert a.steps == b.steps and a.converged == b.converged
        assert abs(a.final_energy - b.final_energy) / a.n_atoms < tolerance_ev_per_atom
        sym_a = find_symmetry(adaptor.get_structure(a.atoms)).number
        assert sym_a == find_symmetry(adaptor.get_structure(b.atoms)).number


def test_batched_driver_takes_exactly_the_sequential_steps_with_emt():
    emt = load_potential("emt")
    cells = _rattled_cells()
    sequential = [relax(c, emt.make_calculator(), 0.02, 200) for c in cells]
    batched = relax_many(cells, AseEvaluator(emt), 0.02, 200)
    _assert_same(sequential, batched, 1e-9)


def _assert_forward_agrees_with_calculator(potential, evaluator, cells, force_atol: float) -> None:
    batch = evaluator.evaluate(cells)
    for cell, evaluation in zip(cells, batch):
        atoms = cell.copy()
        atoms.calc = potential.make_calculator()
        assert evaluation.energy == pytest.approx(atoms.get_potential_energy(), abs=1e-4)
        np.testing.assert_allclose(evaluation.forces, atoms.get_forces(), atol=force_atol)
        np.testing.assert_allclose(evaluation.stress, atoms.get_stress(voigt=False), atol=1e-5)


def test_matgl_batched_forward_agrees_with_its_ase_calculator(tiny_matgl_model):
    potential = load_potential(f"matgl:{tiny_matgl_model}", "cpu")
    _assert_forward_agrees_with_calculator(potential, MatglEvaluator(potential, max_atoms=1000), _rattled_cells(), 1e-4)


def test_chgnet_one_backward_pass_agrees_with_its_ase_calculator():
    """ChgnetEvaluator takes forces and stress from one autograd pass, not CHGNet's two; same numbers."""
    chgnet = load_potential("chgnet", "cpu")
    rutile, anatase = (p.structure.get_primitive_structure() for p in known_polymorphs("TiO2")[:2])
    cells = [AseAtomsAdaptor().get_atoms(s) for s in (rutile, anatase, rutile * (2, 1, 1))]
    for seed, atoms in enumerate(cells):
        atoms.rattle(0.1, seed=seed)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.03 * np.random.default_rng(seed).normal(size=(3, 3))), scale_atoms=True)
    # float32 model: sums in another order differ by ~1e-5 relative on forces of a few eV/A
    _assert_forward_agrees_with_calculator(chgnet, ChgnetEvaluator(chgnet, max_atoms=100), cells, 5e-4)


def test_matgl_batched_relaxation_matches_one_at_a_time(tiny_matgl_model):
    potential = load_potential(f"matgl:{tiny_matgl_model}", "cpu")
    cells = _rattled_cells(1)
    sequential = [relax(c, potential.make_calculator(), 0.05, 40) for c in cells]
    batched = relax_many(cells, MatglEvaluator(potential, max_atoms=12), 0.05, 40)
    for a, b in zip(sequential, batched):
        assert abs(a.final_energy - b.final_energy) / a.n_atoms < 0.005


def test_chgnet_batched_relaxation_matches_one_at_a_time():
    chgnet = load_potential("chgnet", "cpu")
    anatase = known_polymorphs("TiO2")[1].structure.get_primitive_structure()
    cells = []
    for seed in range(3):
        atoms = AseAtomsAdaptor().get_atoms(anatase)
        atoms.rattle(0.05, seed=seed)
        cells.append(atoms)
    sequential = [relax(c, chgnet.make_calculator(), 0.05, 60) for c in cells]
    batched = relax_many(cells, ChgnetEvaluator(chgnet, max_atoms=100), 0.05, 60)
    _assert_same(sequential, batched, 0.005)


class _Recording(BatchEvaluator):
    """Wraps an evaluator and records how many cells each forward pass held."""

    def __init__(self, inner, max_atoms: int, fail_above: int | None = None, poison: int | None = None):
        self.inner, self.max_atoms, self.fail_above, self.poison = inner, max_atoms, fail_above, poison
        self.passes: list[int] = []

    def evaluate(self, cells, keys=None):
        atoms_in = sum(len(c) for c in cells)
        if self.fail_above is not None and atoms_in > self.fail_above:
            raise RuntimeError("CUDA out of memory. Tried to allocate 2.00 GiB")
        if self.poison is not None and any(len(c) == self.poison for c in cells):
            raise ValueError("cannot build the graph of this cell")
        self.passes.append(len(cells))
        return self.inner.evaluate(cells)


def test_in_flight_batching_keeps_the_batch_full():
    emt = load_potential("emt")
    cells = _rattled_cells() * 3  # 12 cells, 45 atoms
    recorder = _Recording(AseEvaluator(emt), max_atoms=16)
    results = relax_many(cells, recorder, 0.02, 200)
    assert len(results) == len(cells)
    total_steps = sum(r.steps + 1 for r in results)  # one evaluation per step plus the first
    assert len(recorder.passes) < total_steps / 2  # several cells per pass
    assert max(recorder.passes) >= 3


def test_out_of_memory_halves_the_pass_and_loses_nothing():
    emt = load_potential("emt")
    cells = _rattled_cells()
    recorder = _Recording(AseEvaluator(emt), max_atoms=64, fail_above=8)  # all 15 atoms at once do not fit
    results = relax_many(cells, recorder, 0.02, 200)
    assert recorder.max_atoms < 15
    reference = [relax(c, emt.make_calculator(), 0.02, 200) for c in cells]
    _assert_same(reference, results, 1e-9)


def test_a_failing_cell_is_kept_with_its_error_and_the_rest_finish():
    emt = load_potential("emt")
    cells = _rattled_cells()
    results = relax_many(cells, _Recording(AseEvaluator(emt), max_atoms=64, poison=4), 0.02, 200)
    failed = [r for r, c in zip(results, cells) if len(c) == 4]
    assert failed[0].error.startswith("ValueError") and not failed[0].converged
    assert all(r.converged for r, c in zip(results, cells) if len(c) != 4)


def test_make_evaluator_picks_the_batched_path_for_torch_models(tiny_matgl_model):
    assert isinstance(make_evaluator(load_potential("emt")), AseEvaluator)
    assert isinstance(make_evaluator(load_potential(f"matgl:{tiny_matgl_model}", "cpu")), MatglEvaluator)
    assert isinstance(make_evaluator(load_potential(f"matgl:{tiny_matgl_model}", "cpu"), batched=False), AseEvaluator)


def test_replicas_batched_equal_replicas_run_one_by_one():
    """Three replicas through one evaluator as one batch (one call per step for all) end where each
    run alone through its ASE calculator ends; on a CPU the replicas go one at a time."""
    emt = load_potential("emt")
    starts = [bulk("Cu", "fcc", a=3.7, cubic=True) * (2, 2, 2) for _ in range(3)]
    for k, s in enumerate(starts):
        s.rattle(0.1, seed=k)
    settings = MeltQuenchSettings(t_high=1500, t_low=300, steps_per_stage=10)
    calls = []

    class Counting(AseEvaluator):
        def evaluate(self, cells, keys=None):
            calls.append(len(cells))
            return super().evaluate(cells, keys)

    evaluator = Counting(emt)
    keys = new_keys(3)
    batched = melt_quench_replicas(starts, settings, [EvaluatorCalculator(evaluator, key) for key in keys],
                                   evaluator_forces(evaluator, keys), [np.random.default_rng([7, k]) for k in range(3)])
    single = [melt_quench(s, emt, settings, np.random.default_rng([7, k])) for k, s in enumerate(starts)]
    for (a, *_), (b, *_) in zip(batched, single):
        np.testing.assert_allclose(a.positions, b.positions, atol=1e-10)
    assert max(calls) == 3  # all three replicas evaluated together
    assert replica_groups(3, "cuda") == [[0, 1, 2]] and replica_groups(3, "cpu") == [[0], [1], [2]]
    assert replica_groups(1, "cuda") == [[0]]


def test_share_intervals_and_separation():
    rng = np.random.default_rng(0)
    labels = ["anatase"] * 60 + ["rutile"] * 20 + ["unknown-1"] * 20
    replicas = [k % 4 for k in range(100)]
    intervals = share_intervals(labels, replicas, rng)
    assert intervals["anatase"][0] < 0.6 < intervals["anatase"][1]
    sep = separation(labels, {"anatase", "rutile"}, replicas, rng)
    assert sep.leader == "anatase" and sep.runner_up == "rutile" and sep.separated
    close = separation(["anatase", "rutile"] * 5, {"anatase", "rutile"}, [0] * 10, rng)
    assert not close.separated


def test_cli_replicas_and_adaptive_sampling(cli, tmp_path):
    out = tmp_path / "run"
    code, stdout, stderr = cli(
        "predict", "Cu", "--potential", "emt", "--preset", "smoke", "--seed", "0", "--replicas", "2", "--max-subcells", "auto",
        "--out", str(out), "--json",
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["replicas"] == 2
    assert report["sampling"]["mode"] == "auto" and report["sampling"]["rounds"]
    assert report["sampling"]["relaxed"] == report["n_subcells"]
    low, high = report["prediction"]["share_ci95"]
    assert low <= report["prediction"]["share"] <= high
    subcells = pd.read_csv(out / "subcells.csv")
    assert set(subcells["replica"]) == {0, 1}
    melt = pd.read_csv(out / "melt_quench.csv")
    assert set(melt["replica"]) == {0, 1}
    polymorphs = pd.read_csv(out / "polymorphs.csv")
    assert {"share_ci_low", "share_ci_high"} <= set(polymorphs.columns)


def test_bad_max_subcells_is_one_line(cli, tmp_path):
    code, stdout, stderr = cli("predict", "Cu", "--potential", "emt", "--max-subcells", "lots", "--out", str(tmp_path / "x"))
    assert code == 2 and "--max-subcells must be a whole number or 'auto'" in stderr
    assert not (tmp_path / "x").exists()


def test_worker_processes_give_the_same_results(tiny_matgl_model):
    from amorph.md.parallel_relax import relax_in_processes, worker_count

    potential = load_potential(f"matgl:{tiny_matgl_model}", "cpu")
    cells = _rattled_cells(2)
    ticks = []
    parallel = relax_in_processes(cells, potential.name, 2, True, 0.05, 30, on_done=lambda _i, _r: ticks.append(1))
    inline = relax_many(cells, MatglEvaluator(potential, max_atoms=96), 0.05, 30)
    assert len(ticks) == len(cells)
    for a, b in zip(inline, parallel):
        assert a.steps == b.steps and abs(a.final_energy - b.final_energy) / a.n_atoms < 1e-4
    from amorph.md.parallel_relax import WorkerPool

    with WorkerPool(2) as pool:  # one set of processes for two rounds, as --max-subcells auto uses it
        first = relax_in_processes(cells[:2], potential.name, 2, True, 0.05, 30, pool=pool)
        second = relax_in_processes(cells[2:], potential.name, 2, True, 0.05, 30, pool=pool)
    for a, b in zip(inline, first + second):
        assert a.steps == b.steps and abs(a.final_energy - b.final_energy) / a.n_atoms < 1e-4
    assert worker_count(4, "cpu", potential.name) == 1  # too little work to start processes
    assert worker_count(400, "cuda", potential.name) == 1 and worker_count(400, "cpu", "emt") == 1


def test_a_failing_worker_is_reported_not_waited_for(tmp_path):
    from amorph.md.parallel_relax import chunk_bounds, relax_in_processes

    with pytest.raises(Exception, match="missing-model"):
        relax_in_processes(_rattled_cells(2), f"matgl:{tmp_path / 'missing-model'}", 2, True, 0.05, 30)
    sizes = [stop - start for start, stop in chunk_bounds(40, 2)]
    assert sizes == [10, 8, 6, 4, 3, 3, 2, 1, 1, 1, 1]  # shrinking: the last chunks balance the workers
    bounds = chunk_bounds(100_000, 2)
    assert bounds[0] == (0, 64) and bounds[-1][1] == 100_000
    assert all(a[1] == b[0] for a, b in zip(bounds, bounds[1:]))
