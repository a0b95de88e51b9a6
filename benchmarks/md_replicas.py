"""R melt-quench replicas three ways, side by side on the same relaxed start cells and random streams:

  ase        one ASE Bussi integrator per replica, one replica after another, its forces from the
             batched evaluator (what amorph ran before the replicas became one state)
  in turn    amorph's integrator (md.integrator), one replica after another (amorph on a CPU)
  together   amorph's integrator, all replicas one state, one batched force call per step (on a GPU)

Each runs the same guards (md.dynamics.Guard) every step; "ase" and "in turn" run --repeats times,
alternating which goes first. Prints seconds and atom-steps per second,
whether "in turn" reproduces "ase" to the bit, and last:

    ratio: <ase / in turn>  (above 1: the batched state is faster than ASE's integrators)

    python benchmarks/md_replicas.py --potential chgnet            # 4 replicas x 48 atoms x 3x50 steps
    python benchmarks/md_replicas.py --potential chgnet --small    # 4 replicas x 24 atoms x 3x10 steps
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from ase import Atoms, units
from ase.constraints import FixCom
from ase.md.bussi import Bussi
from ase.md.velocitydistribution import MaxwellBoltzmannDistribution, Stationary

from amorph.composition import parse_formula
from amorph.matching.database import known_polymorphs
from amorph.md.batched_md import EvaluatorCalculator, evaluator_forces
from amorph.md.dynamics import Guard, run_nvt_replicas
from amorph.md.evaluators import BatchEvaluator, make_evaluator, new_keys
from amorph.md.potentials import load_potential
from amorph.melt_quench import coupling_time_fs, relax_packing, temperature_schedule
from amorph.results.provenance import measured_on
from amorph.run import replica_rngs
from amorph.settings import MeltQuenchSettings, PackingSettings
from amorph.start import start_structure
from amorph.threads import one_blas_thread


def ase_bussi(start: Atoms, evaluator: BatchEvaluator, temperatures: np.ndarray, settings: MeltQuenchSettings,
              rng: np.random.Generator) -> Atoms:
    """One replica under ASE's Bussi, retargeted every step, guarded every step, as amorph ran it."""
    atoms = start.copy()
    key = new_keys(1)[0]
    atoms.calc = EvaluatorCalculator(evaluator, key)
    MaxwellBoltzmannDistribution(atoms, temperature_K=temperatures[0], rng=rng)
    Stationary(atoms)
    atoms.set_constraint(FixCom())
    tau_fs = coupling_time_fs(settings)
    dyn = Bussi(atoms, timestep=settings.timestep * units.fs, temperature_K=temperatures[0], taut=tau_fs * units.fs, rng=rng)
    guard, streaks, hottest = Guard(), (0, 0), float(np.max(temperatures))
    forces = atoms.get_forces(md=True)
    for target in temperatures:
        dyn.temp = float(target) * units.kB
        dyn.target_kinetic_energy = 0.5 * dyn.temp * dyn.ndof
        forces = dyn.step(forces)
        _, streaks = guard.check(atoms.get_potential_energy(), forces, atoms.get_temperature(), atoms, float(target), hottest, streaks)
    evaluator.forget([key])
    atoms.set_constraint()
    return atoms


def ours(starts: list[Atoms], evaluator: BatchEvaluator, temperatures: np.ndarray, settings: MeltQuenchSettings,
         rngs: list[np.random.Generator]) -> list[Atoms]:
    """The replicas as one state through amorph's integrator."""
    cells = [s.copy() for s in starts]
    keys = new_keys(len(cells))
    run_nvt_replicas(cells, evaluator_forces(evaluator, keys), temperatures, settings.timestep, 1.0 / coupling_time_fs(settings),
                     rngs, kind="bussi")
    evaluator.forget(keys)
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--potential", default="chgnet")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--replicas", type=int, default=4)
    parser.add_argument("--atoms", type=int, default=48)
    parser.add_argument("--steps", type=int, default=50, help="MD steps per stage (three stages)")
    parser.add_argument("--small", action="store_true", help="24 atoms, 10 steps per stage")
    parser.add_argument("--repeats", type=int, default=2, help="runs of ase and in turn each, alternating (times averaged)")
    args = parser.parse_args()
    print(measured_on())
    one_blas_thread()  # as a run does (amorph.threads)
    warnings.simplefilter("ignore")
    atoms, steps = (24, 10) if args.small else (args.atoms, args.steps)

    potential = load_potential(args.potential, args.device)
    evaluator = make_evaluator(potential)
    formula = parse_formula("TiO2")
    refs = known_polymorphs("TiO2")
    settings = MeltQuenchSettings(steps_per_stage=steps)
    starts = []
    for rng in replica_rngs(0, 1, args.replicas):
        cell = start_structure(formula, PackingSettings(target_atoms=atoms, grow_to=0), rng, refs)[0]
        relax_packing(cell, EvaluatorCalculator(evaluator, new_keys(1)[0]), settings.start_relax_steps)
        cell.calc = None
        starts.append(cell)
    temperatures = temperature_schedule(settings)

    def rngs() -> list[np.random.Generator]:
        return replica_rngs(0, 2, args.replicas)

    t_ase = t_turn = 0.0
    for repeat in range(args.repeats):  # alternating which goes first, so that a change of load hits both
        for way in (("ase", "turn") if repeat % 2 == 0 else ("turn", "ase")):
            started = time.perf_counter()
            if way == "ase":
                by_ase = [ase_bussi(s, evaluator, temperatures, settings, rng) for s, rng in zip(starts, rngs())]
                t_ase += time.perf_counter() - started
            else:
                in_turn = [ours([s], evaluator, temperatures, settings, [rng])[0] for s, rng in zip(starts, rngs())]
                t_turn += time.perf_counter() - started
    t_ase, t_turn = t_ase / args.repeats, t_turn / args.repeats
    started = time.perf_counter()
    together = ours(starts, evaluator, temperatures, settings, rngs())
    t_together = time.perf_counter() - started

    atom_steps = sum(len(s) for s in starts) * len(temperatures)
    same = all(np.array_equal(a.positions, b.positions) for a, b in zip(by_ase, in_turn))
    drift = max(float(np.abs(a.positions - b.positions).max()) for a, b in zip(in_turn, together))
    print(f"potential {potential.name} on {potential.device}; {args.replicas} replicas x {len(starts[0])} atoms x {len(temperatures)} steps")
    for name, t in (("ase", t_ase), ("in turn", t_turn), ("together", t_together)):
        print(f"{name:9s} {t:7.1f} s  {atom_steps / t:8.0f} atom-steps/s")
    print(f"in turn reproduces ase to the bit: {same}")
    print(f"together / in turn speed: {t_turn / t_together:.2f}x; largest position difference {drift:.1e} A "
          "(a batched forward pass rounds differently; chaotic MD amplifies it)")
    print(f"ratio: {t_ase / t_turn:.2f}")


if __name__ == "__main__":
    main()
