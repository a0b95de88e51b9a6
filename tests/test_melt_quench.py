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

