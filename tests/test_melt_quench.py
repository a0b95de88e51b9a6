import numpy as np
import pytest
from ase.build import bulk
from ase.calculators.emt import EMT

from amorph.errors import AmorphError
from amorph.md.dynamics import run_nvt_schedule
from amorph.melt_quench import temperature_schedule
from amorph.settings import MeltQuenchSettings, RunSettings, override, validate


def test_schedule_holds_ramps_holds():
    t = temperature_schedule(MeltQuenchSettings(t_high=2000, t_low=300, steps_per_stage=10))
    assert len(t) == 30
    assert np.all(t[:10] == 2000) and np.all(t[20:] == 300)
    assert np.all(np.diff(t[10:20]) < 0) and t[10] == 2000 and t[19] > 300


def test_a_stretched_ramp_is_longer_than_the_holds_and_the_stages_are_read_by_their_own_lengths():
    from amorph.melt_quench import STAGES, stage_of_step, stage_steps

    settings = MeltQuenchSettings(t_high=2000, t_low=300, steps_per_stage=10, ramp_factor=2.5)
    assert stage_steps(settings) == (10, 25, 10)
    t = temperature_schedule(settings)
    assert len(t) == 45 and np.all(t[:10] == 2000) and np.all(t[35:] == 300)
    assert np.all(np.diff(t[10:35]) < 0) and t[34] > 300
    # the state after step k belongs to the stage whose target step k followed; step 0 is the start
    assert [STAGES[stage_of_step(k, (10, 25, 10))] for k in (0, 10, 11, 35, 36, 45)] == [
        "hold at T_high", "hold at T_high", "ramp", "ramp", "hold at T_low", "hold at T_low"]
    # the thermostat's time constant comes from the shortest stage: a long ramp does not loosen it
    from amorph.melt_quench import coupling_time_fs

    assert coupling_time_fs(MeltQuenchSettings(steps_per_stage=125, ramp_factor=2.0)) == 2.5
    assert coupling_time_fs(MeltQuenchSettings(steps_per_stage=250, ramp_factor=0.5)) == 2.5


@pytest.mark.parametrize("friction,needle", [(0.6, "at most 0.5/fs"), (0.5, None)])
def test_friction_past_one_step_is_refused(friction, needle):
    settings = override(RunSettings("Cu"), "melt_quench", friction=friction)
    if needle:
        with pytest.raises(AmorphError, match=needle):
            validate(settings)
    else:
        validate(settings)


def test_nvt_follows_target_temperature():
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)
    temps = np.full(300, 600.0)
    log = run_nvt_schedule(atoms, EMT(), temps, timestep_fs=2.0, friction_per_fs=0.05, rng=np.random.default_rng(0), log_every=10)
    assert [row.step for row in log][:3] == [0, 10, 20] and log[-1].step == 300
    late = np.mean([row.temperature for row in log[len(log) // 2 :]])
    assert late == pytest.approx(600, rel=0.25)
    assert atoms.constraints == []  # the centre-of-mass constraint does not leak out


def test_bussi_follows_a_ramp():
    """The ramp retargets the thermostat every step; Bussi must follow it as Langevin does."""
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (3, 3, 3)
    temps = np.concatenate([np.full(150, 900.0), np.linspace(900.0, 300.0, 150), np.full(150, 300.0)])
    log = run_nvt_schedule(atoms, EMT(), temps, timestep_fs=2.0, friction_per_fs=0.02, rng=np.random.default_rng(0),
                           log_every=10, kind="bussi")
    hot = np.mean([row.temperature for row in log if 80 <= row.step <= 150])
    cold = np.mean([row.temperature for row in log if row.step >= 380])
    assert hot == pytest.approx(900, rel=0.2) and cold == pytest.approx(300, rel=0.25)
    assert atoms.constraints == []



def _log(temperatures: list[float], targets: list[float]):
    from amorph.md.dynamics import MDLogRow

    return [MDLogRow(k, 2.0 * k, t0, t, 0.0) for k, (t, t0) in enumerate(zip(temperatures, targets))]


def test_stage_temperatures_read_the_second_half_and_flag_a_stage_off_target():
    from amorph.melt_quench import schedule_warnings, stage_temperatures

    settings = MeltQuenchSettings(t_high=2000, t_low=300, steps_per_stage=10)
    targets = [2000.0] + list(temperature_schedule(settings))
    # hot hold: 5000 K in its first half (a spike), on target in its second; ramp on target; cold hold 20% hot
    reached = [2000.0] + [5000.0] * 5 + [2000.0] * 5 + list(temperature_schedule(settings)[10:20]) + [360.0] * 10
    stages = stage_temperatures(_log(reached, targets), (10, 10, 10), replica=1)
    assert [s.stage for s in stages] == ["hold at T_high", "ramp", "hold at T_low"]
    hot, ramp, cold = stages
    assert (hot.mean, hot.peak, hot.off_target) == (2000.0, 5000.0, False)
    assert ramp.off_target is False and ramp.target == pytest.approx(np.mean(temperature_schedule(settings)[15:20]), abs=0.1)
    assert cold.off_target is True and cold.deviation == pytest.approx(0.2)
    warnings = schedule_warnings(stages, 2000.0)
    assert warnings == ["replica 1, hold at T_low: reached 360 K against 300 K (+20%, more than 10% off)",
                        "replica 1: peaked at 5000 K, above 1.5x the 2000 K melt"]


def test_the_coupling_follows_the_stage_length():
    from amorph.melt_quench import coupling_time_fs

    assert coupling_time_fs(MeltQuenchSettings(steps_per_stage=10_000)) == 100.0  # 20 ps stages: 1/friction
    assert coupling_time_fs(MeltQuenchSettings()) == 50.0  # the paper's 5 ps stages: 1/100 of a stage
    assert coupling_time_fs(MeltQuenchSettings(steps_per_stage=125)) == 2.5  # the quick preset's 250 fs
    assert coupling_time_fs(MeltQuenchSettings(steps_per_stage=10)) == 2.0  # never under one time step


def test_the_packed_cell_is_relaxed_before_the_melt_and_the_melt_follows_its_schedule():
    """A random packing of Cu sits about 1 eV/atom above fcc under EMT; relaxed first, the melt-quench
    (Bussi, the stage's coupling) holds every stage's second half within 10% of its target. A 1 ps
    ramp: on ramps of 0.3-0.5 ps the cooling liquid's structure lags and gives back heat, 3-10% above
    target in the ramp's second half, whatever the coupling (docs/method.md, "Melt-quench")."""
    from amorph.composition import parse_formula
    from amorph.md.potentials import load_potential
    from amorph.melt_quench import melt_quench, stage_temperatures
    from amorph.packing import random_packing

    atoms = random_packing(parse_formula("Cu"), 32, 32 * 1.15 * 11.8, np.random.default_rng(0))
    settings = MeltQuenchSettings(steps_per_stage=500)
    _, log, start = melt_quench(atoms, load_potential("emt", "cpu"), settings, np.random.default_rng(0))
    assert start.packed_energy > 0.8 and start.relaxed_energy < start.packed_energy - 0.5 and start.steps > 0
    assert [row.step for row in log] == list(range(1501))  # every step logged
    stages = stage_temperatures(log, (500, 500, 500))
    assert not any(s.off_target for s in stages), stages
    assert max(s.peak for s in stages) < 1.5 * settings.t_high
