"""Numerical faults: a potential that returns NaN or huge forces on chosen calls. The melt-quench goes
back to its last good state with half the time step (and gives up, naming stage, step and cause,
after three halvings); in the crystallization stage only the subcell it hit is invalid, with its reason."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pytest
from ase import Atoms
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.calculators.emt import EMT

from amorph.errors import SimulationError
from amorph.md.dynamics import MAX_HALVINGS, Guard, MDFault, run_nvt_schedule
from amorph.md.potentials import load_potential
from amorph.melt_quench import melt_quench
from amorph.settings import MeltQuenchSettings


class Faulty(Calculator):
    """EMT, except on the calls in `bad` (1-based) or from call `after` on, where the forces are NaN or
    `scale` x EMT's; with poisoned_size, only cells of that many atoms are hit, on every call."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]

    def __init__(self, bad=(), after=None, scale=None, poisoned_size=None, stress=None):
        super().__init__()
        self.bad, self.after, self.scale, self.poisoned_size = set(bad), after, scale, poisoned_size
        self.stress = stress  # with poisoned_size: that cell's stress, eV/A^3 (negative: it swells without end)
        self.calls = 0

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.calls += 1
        inner = self.atoms.copy()
        inner.calc = EMT()
        forces, energy, stress = inner.get_forces(), inner.get_potential_energy(), inner.get_stress()
        hit = self.calls in self.bad or (self.after is not None and self.calls >= self.after)
        if self.poisoned_size is not None:
            hit = len(self.atoms) == self.poisoned_size
        if hit and self.stress is not None:
            stress = np.array([self.stress] * 3 + [0.0] * 3)
        elif hit:
            forces = forces * self.scale if self.scale is not None else np.full_like(forces, np.nan)
            energy = energy if self.scale is not None else float("nan")
        self.results = {"energy": energy, "free_energy": energy, "forces": forces, "stress": stress}


def _cu() -> Atoms:
    return bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 2)


def _md(calc, steps=120, kind="langevin"):
    return run_nvt_schedule(_cu(), calc, np.full(steps, 1500.0), timestep_fs=2.0, friction_per_fs=0.01,
                            rng=np.random.default_rng(0), guard=(guard := Guard()), kind=kind), guard


@pytest.mark.parametrize("kind", ["langevin", "bussi"])
def test_one_nan_is_rolled_back_and_the_run_goes_on_at_half_the_step(kind):
    log, guard = _md(Faulty(bad={50}), kind=kind)
    assert log[-1].step == 120 and np.isfinite([r.temperature for r in log]).all()
    [fault] = guard.faults
    assert fault.cause == "non-finite energy or forces" and fault.timestep_fs == 1.0 and fault.step == 49


def test_huge_forces_are_caught_and_recovered_from():
    log, guard = _md(Faulty(bad={30}, scale=1e4))
    assert log[-1].step == 120 and guard.faults  # the kick shows as fused atoms or a runaway, then is undone
    assert guard.faults[0].cause.startswith(("atoms fused", "temperature runaway"))


def test_a_fault_that_persists_stops_after_three_halvings():
    with pytest.raises(MDFault) as raised:
        _md(Faulty(after=50))
    # NaN forces, then (from NaN positions) EMT's own error: either way the run stops, naming it
    assert raised.value.cause == "non-finite energy or forces" or raised.value.cause.startswith("the potential failed (ValueError")
    assert raised.value.step >= 40


def test_melt_quench_names_stage_step_and_cause():
    potential = replace(load_potential("emt", "cpu"), make_calculator=lambda: Faulty(after=130))
    settings = MeltQuenchSettings(steps_per_stage=60)
    with pytest.raises(SimulationError) as raised:
        melt_quench(_cu(), potential, settings, np.random.default_rng(0))
    message = str(raised.value)
    found = re.match(r"melt-quench failed at step (\d+) of 180 \((hold at T_high|ramp|hold at T_low)\): ", message)
    assert found, message
    assert found.group(2) == ("hold at T_high", "ramp", "hold at T_low")[(int(found.group(1)) - 1) // 60]
    assert message.endswith(f"still after halving the 2 fs time step {MAX_HALVINGS} times")


class Broken(Calculator):
    """A calculator with a bug of its own (a TypeError), not a numerical fault."""

    implemented_properties = ["energy", "forces"]

    def calculate(self, atoms=None, properties=("energy",), system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        if self.atoms.positions[0, 0] != 0.0:  # from the first step on
            raise TypeError("unsupported operand")
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


def test_a_bug_is_not_retried_as_a_numerical_fault():
    """md.dynamics.RECOVERABLE: only what a potential raises on a bad geometry earns a shorter time
    step; a TypeError is a bug, raised at once with nothing recorded as a fault."""
    guard = Guard()
    with pytest.raises(TypeError, match="unsupported operand"):
        run_nvt_schedule(_cu(), Broken(), np.full(20, 300.0), timestep_fs=2.0, friction_per_fs=0.01,
                         rng=np.random.default_rng(0), guard=guard)
    assert guard.faults == []


def test_a_failed_melt_quench_exits_3_with_one_line_and_keeps_the_folder(cli, tmp_path, monkeypatch):
    """Bad input exits 2; a simulation that fails on good input exits 3 and says what failed, where."""
    import amorph.melt_quench as mq

    def failing(*args, **kwargs):
        raise MDFault(7, "non-finite energy or forces")

    monkeypatch.setattr(mq, "run_nvt_replicas", failing)
    out = tmp_path / "run"
    code, _, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--out", str(out), "--quiet")
    assert code == 3, stderr
    [line] = stderr.strip().splitlines()
    assert line.startswith("amorph: simulation failed: melt-quench failed at step 7 of 750 (hold at T_high): non-finite")
    assert (out / "config.json").is_file() and (out / "start.extxyz").is_file()  # resumable where it stopped


@pytest.mark.parametrize("engine", ["batched", "sequential"])
def test_a_nan_in_relaxation_invalidates_only_that_subcell(engine):
    from amorph.md.engine import Relaxer
    from amorph.md.relax import invalid_reason

    potential = replace(load_potential("emt", "cpu"), make_calculator=lambda: Faulty(poisoned_size=31))
    rng = np.random.default_rng(1)
    cells = []
    for k in range(4):
        cell = _cu()
        cell.rattle(0.05, rng=rng)
        if k == 2:
            del cell[0]  # the 31-atom cell: its every evaluation is NaN
        cells.append(cell)
    with Relaxer(potential, engine, 0.05, 40, expected_cells=len(cells)) as relaxer:
        results = relaxer.relax(cells)
    reasons = [invalid_reason(r, c.get_volume(), 1.5, -100.0) for r, c in zip(results, cells)]
    assert reasons[2] != "" and reasons[0] == reasons[1] == reasons[3] == ""
    assert "not finite" in reasons[2] or "failed" in reasons[2]


@pytest.mark.parametrize("engine", ["batched", "sequential"])
@pytest.mark.parametrize("stress", [-5.0, 5.0])
def test_a_cell_whose_volume_runs_away_is_stopped_at_once_and_marked(engine, stress):
    """A cell that swells or collapses is stopped at the step its volume leaves 1/4-4x (a collapsing
    cell's neighbour list would grow without bound), not relaxed on to the step limit."""
    from amorph.md.engine import Relaxer
    from amorph.md.relax import VOLUME_LIMIT, invalid_reason

    potential = replace(load_potential("emt", "cpu"), make_calculator=lambda: Faulty(poisoned_size=31, stress=stress))
    cells = [_cu(), _cu()]
    del cells[1][0]
    with Relaxer(potential, engine, 0.05, 500, expected_cells=len(cells)) as relaxer:
        results = relaxer.relax(cells)
    assert invalid_reason(results[0], cells[0].get_volume(), 1.5, -100.0) == ""
    assert invalid_reason(results[1], cells[1].get_volume(), 1.5, -100.0).startswith("blew up (volume")
    ratio = results[1].atoms.get_volume() / cells[1].get_volume()
    assert results[1].steps < 500 and (ratio < 2 * VOLUME_LIMIT if stress < 0 else ratio > 1 / (2 * VOLUME_LIMIT))


def test_a_potential_that_fails_at_the_start_is_named_as_such(monkeypatch):
    """A force call that fails on the MD's first state (nothing a time step changes) ends at once, and
    the message does not claim halvings that never happened."""
    import amorph.melt_quench as mq
    from amorph.md.dynamics import run_nvt_replicas

    def broken(rows, cells):
        raise RuntimeError("no graph for this cell")

    with pytest.raises(MDFault) as raised:
        run_nvt_replicas([_cu()], broken, np.full(10, 1000.0), 2.0, 0.01, [np.random.default_rng(0)])
    assert raised.value.step == 0 and raised.value.halvings == 0 and "RuntimeError: no graph" in raised.value.cause

    def failing(*args, **kwargs):
        raise MDFault(0, "the potential failed (RuntimeError: no graph for this cell)", 0, 0)

    monkeypatch.setattr(mq, "run_nvt_replicas", failing)
    settings = MeltQuenchSettings(steps_per_stage=5, start_relax_steps=0)
    with pytest.raises(SimulationError) as message:
        melt_quench(_cu(), load_potential("emt", "cpu"), settings, np.random.default_rng(0))
    assert str(message.value).endswith("no graph for this cell), before any step")
