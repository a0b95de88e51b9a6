"""The batched NVT integrator (md.integrator) is ASE's Bussi and Langevin to the last bit, replica by
replica, and a batch of replicas stepped together is each replica stepped alone."""

from __future__ import annotations

import numpy as np
import pytest
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.emt import EMT
from ase.constraints import FixCom
from ase.md.bussi import Bussi
from ase.md.langevin import Langevin
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from amorph.md.dynamics import Guard, calculator_forces, run_nvt_replicas, run_nvt_schedule
from amorph.md.integrator import Coupling, NVTIntegrator, ReplicaBatch

TIMESTEP_FS, FRICTION = 2.0, 0.02


class EMT32(EMT):
    """EMT with float32 forces, as torch models' ASE calculators (CHGNet, matgl) return them."""

    def calculate(self, *args, **kwargs):
        super().calculate(*args, **kwargs)
        self.results["forces"] = self.results["forces"].astype(np.float32)


def _cu(seed: int) -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)
    atoms.rattle(0.05, seed=seed)
    return atoms


def _thermalised(seed: int, temperature: float) -> Atoms:
    atoms = _cu(seed)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperature, rng=np.random.default_rng(seed))
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    return atoms


def _ase_trajectory(kind: str, seed: int, targets: list[float], timestep_fs: float, calculator=EMT) -> list[tuple[np.ndarray, np.ndarray]]:
    """ASE's own integrator, retargeted every step (Bussi through its public attributes)."""
    atoms = _thermalised(seed, targets[0])
    atoms.calc = calculator()
    rng = np.random.default_rng(100 + seed)
    if kind == "bussi":
        dyn = Bussi(atoms, timestep=timestep_fs * units.fs, temperature_K=targets[0], taut=units.fs / FRICTION, rng=rng)
    else:
        dyn = Langevin(atoms, timestep=timestep_fs * units.fs, temperature_K=targets[0], friction=FRICTION / units.fs,
                       fixcm=False, rng=rng)
    forces = atoms.get_forces(md=True)
    out = []
    for target in targets:
        if kind == "bussi":
            dyn.temp = target * units.kB
            dyn.target_kinetic_energy = 0.5 * dyn.temp * dyn.ndof
        else:
            dyn.set_temperature(temperature_K=target)
        forces = dyn.step(forces)
        out.append((atoms.get_positions(), atoms.get_momenta()))
    return out


def _our_trajectory(kind: str, seeds: list[int], targets: list[float], timestep_fs: float,
                    calculator=EMT) -> list[list[tuple[np.ndarray, np.ndarray]]]:
    """Our integrator on all seeds' cells as one batch."""
    cells = [_thermalised(seed, targets[0]) for seed in seeds]
    state = ReplicaBatch.of(cells)
    forces_of = calculator_forces([calculator() for _ in seeds])
    rows = list(range(len(seeds)))

    def evaluate() -> None:
        for k, (energy, forces) in zip(rows, forces_of(rows, [state.atoms(k) for k in rows])):
            state.set_forces(k, energy, forces)

    integrator = NVTIntegrator(state, [np.random.default_rng(100 + seed) for seed in seeds])
    evaluate()
    out: list[list[tuple[np.ndarray, np.ndarray]]] = [[] for _ in seeds]
    for target in targets:
        couplings = [Coupling(kind, timestep_fs, FRICTION, target) for _ in rows]  # type: ignore[arg-type]
        for k in rows:
            integrator.before_forces(k, couplings[k])
        evaluate()
        for k in rows:
            integrator.after_forces(k, couplings[k])
        for k in rows:
            out[k].append((state.positions[k].copy(), state.momenta[k].copy()))
    return out


@pytest.mark.parametrize("kind", ["bussi", "langevin"])
@pytest.mark.parametrize("timestep_fs", [TIMESTEP_FS, TIMESTEP_FS / 4])
@pytest.mark.parametrize("calculator", [EMT, EMT32])
def test_each_replica_is_ases_trajectory_to_the_bit(kind, timestep_fs, calculator):
    targets = list(np.linspace(1500.0, 600.0, 40))
    ours = _our_trajectory(kind, [0, 1], targets, timestep_fs, calculator)
    for k, seed in enumerate([0, 1]):
        reference = _ase_trajectory(kind, seed, targets, timestep_fs, calculator)
        for step, ((p_ref, m_ref), (p, m)) in enumerate(zip(reference, ours[k])):
            assert np.array_equal(p, p_ref), f"{kind}, replica {k}: positions differ at step {step + 1}"
            assert np.array_equal(m, m_ref), f"{kind}, replica {k}: momenta differ at step {step + 1}"


def test_centre_of_mass_stays_and_total_momentum_is_zero():
    cells = [_thermalised(3, 1200.0)]
    before = cells[0].get_center_of_mass()
    run_nvt_replicas(cells, calculator_forces([EMT()]), np.full(30, 1200.0), TIMESTEP_FS, FRICTION, [np.random.default_rng(0)],
                     kind="bussi")
    assert np.allclose(cells[0].get_center_of_mass(), before, atol=1e-10)
    assert np.allclose(cells[0].get_momenta().sum(axis=0), 0.0, atol=1e-10)


def _cu_au(seed: int) -> Atoms:
    """Cu with a quarter of its atoms gold, a different quarter per seed: replicas whose species come in
    different orders, as random packings do."""
    atoms = _cu(seed)
    gold = np.random.default_rng(seed).choice(len(atoms), len(atoms) // 4, replace=False)
    atoms.numbers[gold] = 79
    return atoms


@pytest.mark.parametrize("kind", ["bussi", "langevin"])
def test_a_batch_is_each_replica_alone(kind):
    """Three replicas stepped together, one force call per step, log what each logs when run alone."""
    temps = np.linspace(1500.0, 300.0, 60)
    calls = []
    inner = calculator_forces([EMT() for _ in range(3)])

    def counting(rows, cells):
        calls.append(len(rows))
        return inner(rows, cells)

    together = [_cu_au(seed) for seed in range(3)]
    logs = run_nvt_replicas(together, counting, temps, TIMESTEP_FS, FRICTION, [np.random.default_rng([7, k]) for k in range(3)],
                            log_every=1, kind=kind, guards=[Guard() for _ in range(3)])
    assert set(calls) == {3} and len(calls) == len(temps) + 1  # the start, then one call per step for all three
    for k in range(3):
        alone = _cu_au(k)
        log = run_nvt_schedule(alone, EMT(), temps, TIMESTEP_FS, FRICTION, np.random.default_rng([7, k]), log_every=1, kind=kind)
        assert log == logs[k]
        assert np.array_equal(alone.positions, together[k].positions)


def test_a_fault_sends_only_its_replica_back():
    """Replica 1's forces turn NaN once: it goes back to its last good state with half the time step;
    replica 0, in the same batch, runs on as it would alone."""
    temps = np.full(50, 1200.0)
    inner = calculator_forces([EMT(), EMT()])
    calls = {"n": 0}

    def poisoned(rows, cells):
        calls["n"] += 1
        out = inner(rows, cells)
        if calls["n"] == 30 and 1 in rows:
            out = [(e, np.full_like(f, np.nan)) if k == 1 else (e, f) for k, (e, f) in zip(rows, out)]
        return out

    cells = [_cu(0), _cu(1)]
    guards = [Guard(), Guard()]
    logs = run_nvt_replicas(cells, poisoned, temps, TIMESTEP_FS, FRICTION, [np.random.default_rng([3, k]) for k in range(2)],
                            log_every=1, kind="bussi", guards=guards)
    assert guards[0].faults == []
    [fault] = guards[1].faults
    assert fault.cause == "non-finite energy or forces" and fault.step == 29 and fault.timestep_fs == TIMESTEP_FS / 2
    alone = run_nvt_schedule(_cu(0), EMT(), temps, TIMESTEP_FS, FRICTION, np.random.default_rng([3, 0]), log_every=1, kind="bussi")
    assert logs[0] == alone
    assert [row.step for row in logs[1]] == list(range(51))  # the schedule completed, replayed steps logged once
