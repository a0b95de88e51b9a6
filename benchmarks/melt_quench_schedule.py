"""Does the melt-quench follow its schedule? Per variant, the temperatures each stage reached.

    python benchmarks/melt_quench_schedule.py Cu --potential emt --preset smoke
    python benchmarks/melt_quench_schedule.py TiO2 --potential chgnet --preset quick --replicas 2

Variants, on the same packed cells and MD seeds:
  as-packed-100fs   the MD straight from the random packing, thermostat time constant 100 fs (main before
                    the fix; its guard widened to 30x the target as it was then, so that it runs)
  relaxed-100fs     the packed cell relaxed first, 100 fs
  as-packed-stage   no relaxation, the time constant set by the stage (amorph.melt_quench.coupling_time_fs)
  relaxed-stage     both: what amorph runs now
For each: the packed and relaxed energies (eV/atom), and per stage the second half's mean against its
target and the peak, with the share of stages off by more than 10% and the highest peak over T_high.
"""

from __future__ import annotations

import argparse
from dataclasses import replace

from amorph.composition import parse_formula
from amorph.matching.database import known_polymorphs
from amorph.md.batched_md import EvaluatorCalculator
from amorph.md.dynamics import Guard, MDFault, run_nvt_schedule
from amorph.md.evaluators import make_evaluator, new_keys
from amorph.md.potentials import load_potential
from amorph.melt_quench import coupling_time_fs, relax_packing, stage_steps, stage_temperatures, temperature_schedule
from amorph.results.provenance import measured_on
from amorph.run import STREAM_MD, STREAM_PACKING, replica_rngs
from amorph.settings import preset_settings
from amorph.start import start_structure


def replica_runner(mq, relaxed: bool, tau: float, rngs, stats: list, energies: list, faults: list):  # noqa: ANN001
    """One variant's run of one replica: it appends the replica's stage temperatures, start energies
    and faults to the lists given (a factory, so that each variant's runs keep their own)."""

    def one(k: int, start, evaluator) -> None:  # noqa: ANN001
        atoms = start.copy()
        key = new_keys(1)[0]
        calc = EvaluatorCalculator(evaluator, key)
        start_fit = relax_packing(atoms, calc, mq.start_relax_steps if relaxed else 0)
        energies.append((start_fit.packed_energy, start_fit.relaxed_energy, start_fit.steps))
        guard = Guard() if relaxed else Guard(instant_factor=30.0)
        try:
            log = run_nvt_schedule(atoms, calc, temperature_schedule(mq), mq.timestep, 1.0 / tau, rngs[k], log_every=1,
                                   kind=mq.thermostat, guard=guard)
        except MDFault as fault:
            faults.append(f"replica {k}: {fault}")
            return
        finally:
            evaluator.forget([key])
        stats.extend(stage_temperatures(log, stage_steps(mq), replica=k))
        faults.extend(f"replica {k}: recovered at step {f.step}: {f.cause}" for f in guard.faults)

    return one


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("formula")
    parser.add_argument("--potential", default="chgnet")
    parser.add_argument("--preset", default="quick")
    parser.add_argument("--replicas", type=int, default=None, help="default: the preset's")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--ramp-factor", type=float, default=None, help="default: the preset's")
    parser.add_argument("--variants", default="as-packed-100fs,relaxed-100fs,as-packed-stage,relaxed-stage")
    args = parser.parse_args()
    print(measured_on())
    settings = preset_settings(args.formula, args.preset, potential=args.potential, seed=args.seed)
    mq = settings.melt_quench if args.ramp_factor is None else replace(settings.melt_quench, ramp_factor=args.ramp_factor)
    replicas = args.replicas or mq.replicas
    potential = load_potential(args.potential, "cpu")
    formula = parse_formula(args.formula)
    references = known_polymorphs(args.formula)  # the built-in database: its ground state sets the volume
    starts = [start_structure(formula, settings.packing, rng, references)[0]
              for rng in replica_rngs(args.seed, STREAM_PACKING, replicas)]
    print(f"{args.formula} ({potential.name}), preset {args.preset}: {len(starts[0])} atoms, {replicas} replicas, "
          f"{'/'.join(map(str, stage_steps(mq)))} steps of {mq.timestep:g} fs (hold, ramp, hold), "
          f"{mq.t_high:.0f} K -> {mq.t_low:.0f} K, {mq.thermostat}")
    for variant in args.variants.split(","):
        relaxed, stage_tau = variant.startswith("relaxed"), variant.endswith("stage")
        tau = coupling_time_fs(mq) if stage_tau else 100.0
        stats, energies, faults = [], [], []
        rngs = replica_rngs(args.seed, STREAM_MD, replicas)

        one = replica_runner(mq, relaxed, tau, rngs, stats, energies, faults)

        # the pipeline's force engine (md.evaluators), one replica after another as on a CPU
        evaluator = make_evaluator(potential)
        for k, start in enumerate(starts):
            one(k, start, evaluator)
        print(f"\n{variant}: time constant {tau:g} fs; start energies (eV/atom, packed -> relaxed, FIRE steps): "
              + "; ".join(f"{a:.3f} -> {b:.3f} ({n})" for a, b, n in energies))
        for s in stats:
            print(f"  replica {s.replica} {s.stage:15s} target {s.target:7.0f} K  reached {s.mean:7.0f} +- {s.spread:5.0f} K "
                  f"({100 * s.deviation:+5.0f}%)  peak {s.peak:7.0f} K{'  OFF' if s.off_target else ''}")
        if stats:
            peak = max(s.peak for s in stats)
            print(f"  stages off by more than 10%: {sum(s.off_target for s in stats)}/{len(stats)}; "
                  f"highest peak {peak:.0f} K = {peak / mq.t_high:.2f}x T_high")
        for line in faults:
            print(f"  {line}")


if __name__ == "__main__":
    main()
