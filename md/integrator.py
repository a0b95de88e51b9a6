"""NVT velocity Verlet for a batch of melt-quench replicas: one state, one integrator.

The replicas of a run are one state (positions, momenta and forces of shape (replicas, atoms, 3)),
stepped together by one integrator, so that one batched force call per step serves all of them
(as torch-sim's `integrate` steps a batched SimState). Each replica keeps its own time step (halved
after a fault, md.dynamics), target temperature and random stream.

Why our own rather than one ASE integrator per replica: ASE's integrators each own one Atoms and
call its calculator in the middle of their step, so several replicas could share a force call only
from threads meeting at a barrier. The arithmetic is ASE's, operation for operation, with the
centre of mass held fixed as ase.constraints.FixCom holds it: Bussi is ase.md.bussi.Bussi (ASE
3.29) and Langevin is ase.md.langevin.Langevin with fixcm=False. The batch is the state and the
force call; the integrator's own arithmetic runs replica by replica, on one replica's (atoms, 3)
arrays in ASE's order (65 us a step for 48 atoms, benchmarks/md_host_cost.py), so that a replica's
trajectory is the one ASE would give to the last bit (tests/test_integrator.py checks it).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
from ase import Atoms, units

from amorph.settings import Thermostat


@dataclass
class ReplicaBatch:
    """The batched state: every replica has as many atoms as the others, in its own cell."""

    numbers: np.ndarray  # (replicas, atoms)
    masses: np.ndarray  # (replicas, atoms) amu
    cells: np.ndarray  # (replicas, 3, 3) A
    pbc: np.ndarray  # (3,)
    positions: np.ndarray  # (replicas, atoms, 3) A
    momenta: np.ndarray  # (replicas, atoms, 3) amu A / (ASE time unit)
    forces: np.ndarray = field(init=False)  # (replicas, atoms, 3) eV/A, at the current positions
    energies: np.ndarray = field(init=False)  # (replicas,) eV
    # the dtype each replica's forces came in: ASE multiplies a calculator's float32 forces in float32
    # (numpy's promotion rules), and so must the integrator to give ASE's numbers (stored exactly in float64)
    force_dtypes: list[np.dtype] = field(init=False)

    def __post_init__(self) -> None:
        self.forces = np.zeros_like(self.positions)
        self.energies = np.zeros(len(self.positions))
        self.force_dtypes = [np.dtype(np.float64)] * len(self.positions)

    def set_forces(self, k: int, energy: float, forces: np.ndarray) -> None:
        """Replica k's energy and forces at its current positions, as the force call gave them."""
        self.energies[k], self.forces[k], self.force_dtypes[k] = energy, forces, np.asarray(forces).dtype

    def force(self, k: int) -> np.ndarray:
        """Replica k's forces in the dtype they came in."""
        return self.forces[k].astype(self.force_dtypes[k], copy=False)

    @classmethod
    def of(cls, replicas: list[Atoms]) -> ReplicaBatch:
        """The state of these cells (momenta as set on them); all must hold as many atoms."""
        if len({len(a) for a in replicas}) > 1 or any(not np.array_equal(a.pbc, replicas[0].pbc) for a in replicas):
            raise ValueError("replicas batched together must hold as many atoms each, with the same periodicity")
        return cls(np.array([a.numbers for a in replicas]), np.array([a.get_masses() for a in replicas]),
                   np.array([a.cell.array for a in replicas]), replicas[0].pbc.copy(),
                   np.array([a.get_positions() for a in replicas]), np.array([a.get_momenta() for a in replicas]))

    @property
    def degrees_of_freedom(self) -> int:
        """3 per atom, less the 3 of the fixed centre of mass."""
        return 3 * self.numbers.shape[1] - 3

    def kinetic_energy(self, k: int) -> float:
        """Replica k's kinetic energy, eV (Atoms.get_kinetic_energy)."""
        return 0.5 * float(np.vdot(self.momenta[k], self.momenta[k] / self.masses[k][:, np.newaxis]))

    def temperature(self, k: int) -> float:
        """Replica k's kinetic temperature, K (Atoms.get_temperature with FixCom)."""
        return 2 * self.kinetic_energy(k) / (self.degrees_of_freedom * units.kB)

    def atoms(self, k: int) -> Atoms:
        """Replica k as an Atoms object (positions only): for the force call and the fusion check."""
        return Atoms(numbers=self.numbers[k], positions=self.positions[k], cell=self.cells[k], pbc=self.pbc)

    def zero_momentum(self, k: int, momenta: np.ndarray) -> None:
        """Remove the centre-of-mass momentum from replica k's momenta, in place (FixCom.adjust_momenta)."""
        masses = self.masses[k]
        velocity_com = momenta.sum(axis=0) / masses.sum()
        momenta -= masses[:, None] * velocity_com

    def keep_centre(self, k: int, new: np.ndarray) -> None:
        """Shift replica k's new positions so the centre of mass stays where it is (FixCom.adjust_positions)."""
        masses = self.masses[k]
        old_cm = masses @ self.positions[k] / masses.sum()
        new_cm = masses @ new / masses.sum()
        new += old_cm - new_cm


@dataclass
class Coupling:
    """One replica's thermostat settings for the step it is taking."""

    kind: Thermostat
    timestep_fs: float
    friction_per_fs: float  # Langevin's friction, or Bussi's 1/tau
    temperature_K: float

    @property
    def dt(self) -> float:
        return self.timestep_fs * units.fs


class NVTIntegrator:
    """Velocity Verlet with a Bussi or Langevin thermostat, one replica of the state at a time.

    A step is split where the forces are needed: `before_forces` moves replica k's atoms, the caller
    evaluates the forces at the new positions (one batched call for all replicas moved) and stores
    them in the state, and `after_forces` completes the step. Each replica brings its own Coupling
    (its kind checked where the run starts, md.dynamics) and random generator."""

    def __init__(self, state: ReplicaBatch, rngs: list[np.random.Generator]):
        self.state = state
        self.rngs = rngs
        self._noise: dict[int, tuple[np.ndarray, np.ndarray]] = {}  # Langevin: each replica's kicks, used twice a step

    def before_forces(self, k: int, coupling: Coupling) -> None:
        if coupling.kind == "bussi":
            self._bussi_rescale(k, coupling)
            self._verlet_drift(k, coupling.dt)
        else:
            self._langevin_drift(k, coupling)

    def after_forces(self, k: int, coupling: Coupling) -> None:
        s = self.state
        if coupling.kind == "bussi":
            momenta = np.array(s.momenta[k] + 0.5 * coupling.dt * s.force(k))
        else:
            momenta = self._langevin_kick(k, coupling)
        s.zero_momentum(k, momenta)
        s.momenta[k] = momenta

    # Bussi, Donadio & Parrinello (2007), eq. (A7), as ase.md.bussi.Bussi takes it
    def _bussi_rescale(self, k: int, c: Coupling) -> None:
        s = self.state
        ndof = s.degrees_of_freedom
        exp_term = math.exp(-c.dt / (units.fs / c.friction_per_fs))
        target_kinetic_energy = 0.5 * (c.temperature_K * units.kB) * ndof
        kinetic_energy = s.kinetic_energy(k)
        energy_scaling_term = (1 - exp_term) * target_kinetic_energy / kinetic_energy / ndof
        normal_noise = float(self.rngs[k].standard_normal())
        sum_of_noises = float(2.0 * self.rngs[k].standard_gamma(0.5 * (ndof - 1)))
        alpha = math.sqrt(exp_term + energy_scaling_term * (sum_of_noises + normal_noise**2)
                          + 2 * normal_noise * math.sqrt(exp_term * energy_scaling_term))
        momenta = np.array(alpha * s.momenta[k])
        s.zero_momentum(k, momenta)
        s.momenta[k] = momenta

    def _verlet_drift(self, k: int, dt: float) -> None:
        """ase.md.verlet.VelocityVerlet.step up to the force call (its first half of RATTLE for FixCom)."""
        s = self.state
        p = s.momenta[k] + 0.5 * dt * s.force(k)
        masses = s.masses[k][:, None]
        r = s.positions[k].copy()
        new = np.array(r + dt * p / masses, float)
        s.keep_centre(k, new)
        s.positions[k] = new
        s.momenta[k] = (new - r) * masses / dt

    # ase.md.langevin.Langevin (Vanden-Eijnden & Ciccotti 2006), fixcm=False, centre of mass by FixCom
    def _langevin_coefficients(self, k: int, c: Coupling) -> tuple[float, float, np.ndarray, np.ndarray, np.ndarray]:
        dt, temperature, fr = c.dt, units.kB * c.temperature_K, c.friction_per_fs / units.fs
        masses = self.state.masses[k].reshape(-1, 1)
        sigma = np.sqrt(2 * temperature * fr / masses)
        c1 = dt / 2.0 - dt * dt * fr / 8.0
        c2 = dt * fr / 2 - dt * dt * fr * fr / 8.0
        c3 = np.sqrt(dt) * sigma / 2.0 - dt**1.5 * fr * sigma / 8.0
        c5 = dt**1.5 * sigma / (2 * np.sqrt(3))
        c4 = fr / 2.0 * c5
        return c1, c2, c3, c4, c5

    def _langevin_drift(self, k: int, c: Coupling) -> None:
        s = self.state
        c1, c2, c3, c4, c5 = self._langevin_coefficients(k, c)
        masses = s.masses[k].reshape(-1, 1)
        v = s.momenta[k] / s.masses[k][:, np.newaxis]
        xi = self.rngs[k].standard_normal(size=(len(masses), 3))
        eta = self.rngs[k].standard_normal(size=(len(masses), 3))
        rnd_pos = c5 * eta
        rnd_vel = c3 * xi - c4 * eta
        v += c1 * s.force(k) / masses - c2 * v + rnd_vel
        x = s.positions[k].copy()
        new = np.array(x + c.dt * v + rnd_pos, float)
        s.keep_centre(k, new)
        s.positions[k] = new
        self._noise[k] = (rnd_vel, (new - x - rnd_pos) / c.dt)

    def _langevin_kick(self, k: int, c: Coupling) -> np.ndarray:
        s = self.state
        c1, c2, _, _, _ = self._langevin_coefficients(k, c)
        masses = s.masses[k].reshape(-1, 1)
        rnd_vel, v = self._noise.pop(k)
        v += c1 * s.force(k) / masses - c2 * v + rnd_vel
        return np.array(v * masses)
