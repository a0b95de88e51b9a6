"""The host's cost of one melt-quench MD step, apart from the force call, side by side:

  before  ASE's Bussi integrator, and the fusion check through ase.neighborlist.neighbor_list
  now     amorph's batched integrator (md.integrator) and the fusion check through md.relax.close_pairs

On a GPU this cost adds to a force call of a few ms, so it decides how fast the melt-quench runs
there. A 48-atom Cu cell, forces that cost nothing (zero), 1500 steps. Prints microseconds per
replica-step for each part and, last:

    ratio: <before / now>

    python benchmarks/md_host_cost.py
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from ase import Atoms, units
from ase.build import bulk
from ase.calculators.calculator import Calculator, all_changes
from ase.constraints import FixCom
from ase.md.bussi import Bussi
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary
from ase.neighborlist import neighbor_list

from amorph.md.integrator import Coupling, NVTIntegrator, ReplicaBatch
from amorph.md.relax import close_pairs
from amorph.results.provenance import measured_on

CUTOFF = 1.5  # A, the default fusion distance


class Zero(Calculator):
    """No forces at all: what is left is the integrator's own cost."""

    implemented_properties = ["energy", "forces"]  # noqa: RUF012

    def calculate(self, atoms=None, properties=None, system_changes=all_changes):
        super().calculate(atoms, properties, system_changes)
        self.results = {"energy": 0.0, "forces": np.zeros((len(self.atoms), 3))}


def thermalised() -> Atoms:
    atoms = bulk("Cu", "fcc", a=3.61, cubic=True) * (2, 2, 3)
    atoms.rattle(0.05, seed=1)
    MaxwellBoltzmannDistribution(atoms, temperature_K=1000.0, rng=np.random.default_rng(0))
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    return atoms


def ase_steps(steps: int) -> float:
    atoms = thermalised()
    atoms.calc = Zero()
    dyn = Bussi(atoms, timestep=2 * units.fs, temperature_K=1000.0, taut=50 * units.fs, rng=np.random.default_rng(1))
    forces = atoms.get_forces(md=True)
    started = time.perf_counter()
    for _ in range(steps):
        forces = dyn.step(forces)
    return time.perf_counter() - started


def our_steps(steps: int) -> float:
    state = ReplicaBatch.of([thermalised()])
    integrator = NVTIntegrator(state, [np.random.default_rng(1)])
    coupling = Coupling("bussi", 2.0, 0.02, 1000.0)
    started = time.perf_counter()
    for _ in range(steps):
        integrator.before_forces(0, coupling)
        state.atoms(0)  # the cell handed to the force call
        state.forces[0] = 0.0
        integrator.after_forces(0, coupling)
    return time.perf_counter() - started


def fusion_checks(steps: int, close) -> float:  # noqa: ANN001 - either pair finder
    atoms = thermalised()
    rng = np.random.default_rng(2)
    cells = [atoms.positions + rng.normal(0, 0.3, atoms.positions.shape) for _ in range(20)]
    started = time.perf_counter()
    for step in range(steps):
        atoms.positions = cells[step % len(cells)]
        close(atoms)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--steps", type=int, default=1500)
    args = parser.parse_args()
    print(measured_on())
    warnings.simplefilter("ignore", DeprecationWarning)  # ASE's MaxwellBoltzmannDistribution, as amorph calls it
    n = args.steps
    t = {
        "integrator, ASE": ase_steps(n),
        "integrator, amorph": our_steps(n),
        "fusion check, neighbor_list": fusion_checks(n, lambda a: neighbor_list("ijd", a, CUTOFF, self_interaction=False)),
        "fusion check, close_pairs": fusion_checks(n, lambda a: close_pairs(a, CUTOFF)),
    }
    for name, seconds in t.items():
        print(f"{name:30s} {1e6 * seconds / n:7.0f} us per replica-step")
    before = t["integrator, ASE"] + t["fusion check, neighbor_list"]
    now = t["integrator, amorph"] + t["fusion check, close_pairs"]
    print(f"before {1e6 * before / n:.0f} us, now {1e6 * now / n:.0f} us per replica-step")
    print(f"ratio: {before / now:.1f}")


if __name__ == "__main__":
    main()
