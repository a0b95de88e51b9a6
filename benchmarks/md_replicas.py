"""R melt-quench replicas with one batched force call per MD step vs R runs one after another.

Same potential, same start cells (random TiO2 packings, seeds 0..R-1), same random streams, so the
two ways integrate the same trajectories (up to floating-point noise of batched evaluation). A third
timing runs the replicas one after another through the batched evaluator, which is what amorph does
on a CPU, where that beats batching them. Prints atom-steps per second for each and, last:

    ratio: <batched / sequential>

    python benchmarks/md_replicas.py --potential chgnet            # 8 replicas x 48 atoms x 3x50 steps
    python benchmarks/md_replicas.py --potential chgnet --small    # 8 replicas x 24 atoms x 3x10 steps
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np

from amorph.composition import parse_formula
from amorph.matching.database import known_polymorphs
from amorph.md.batched_md import run_replicas
from amorph.md.evaluators import make_evaluator
from amorph.md.potentials import load_potential
from amorph.melt_quench import melt_quench
from amorph.run import replica_rngs
from amorph.settings import MeltQuenchSettings, PackingSettings
from amorph.start import start_structure
from amorph.threads import one_blas_thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--potential", default="chgnet")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--replicas", type=int, default=8)
    parser.add_argument("--atoms", type=int, default=48)
    parser.add_argument("--steps", type=int, default=50, help="MD steps per stage (three stages)")
    parser.add_argument("--small", action="store_true", help="24 atoms, 10 steps per stage")
    args = parser.parse_args()
    one_blas_thread()  # as a run does (amorph.threads)
    warnings.simplefilter("ignore")
    atoms, steps = (24, 10) if args.small else (args.atoms, args.steps)

    potential = load_potential(args.potential, args.device)
    formula = parse_formula("TiO2")
    refs = known_polymorphs("TiO2")
    starts = [start_structure(formula, PackingSettings(target_atoms=atoms), rng, refs)[0] for rng in replica_rngs(0, 1, args.replicas)]
    settings = MeltQuenchSettings(steps_per_stage=steps)

    def one(k, start, pot):
        return melt_quench(start, pot, settings, replica_rngs(0, 2, args.replicas)[k])

    started = time.perf_counter()
    sequential = [one(k, s, potential) for k, s in enumerate(starts)]
    t_seq = time.perf_counter() - started
    started = time.perf_counter()
    batched = run_replicas(starts, potential, make_evaluator(potential), one)
    t_batch = time.perf_counter() - started
    started = time.perf_counter()  # what amorph does on a CPU: one after another, through the evaluator
    run_replicas(starts, potential, make_evaluator(potential), one, together=False)
    t_turns = time.perf_counter() - started

    atom_steps = sum(len(s) for s in starts) * 3 * steps
    drift = max(float(np.abs(a.positions - b.positions).max()) for (a, _), (b, _) in zip(sequential, batched))
    print(f"potential {potential.name} on {potential.device}; {args.replicas} replicas x {len(starts[0])} atoms x {3 * steps} steps")
    print(f"sequential: {t_seq:.1f} s, {atom_steps / t_seq:.0f} atom-steps/s")
    print(f"batched: {t_batch:.1f} s, {atom_steps / t_batch:.0f} atom-steps/s")
    print(f"one after another through the batched evaluator: {t_turns:.1f} s, {atom_steps / t_turns:.0f} atom-steps/s "
          f"({t_seq / t_turns:.2f}x sequential)")
    print(f"largest position difference between the two at the end: {drift:.2e} A (chaotic MD amplifies float noise)")
    print(f"ratio: {t_seq / t_batch:.2f}")


if __name__ == "__main__":
    main()
