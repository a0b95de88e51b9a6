"""What one force call costs under each potential, side by side, as a ratio to the first.

    OMP_NUM_THREADS=1 python benchmarks/potential_cost.py --potentials chgnet,sevennet,diep --cells 4 --repeat 5

A batch of `--cells` rattled 48-atom rutile cells (the quick preset's four replicas at one MD step)
goes through each potential's batched evaluator (amorph.md.evaluators), once to warm up and then
`--repeat` times; the mean seconds per call and the ratio to the first potential are printed. The
calls alternate between potentials round by round, so a machine whose load changes slows them alike.
"""

from __future__ import annotations

import argparse
import time

from pymatgen.io.ase import AseAtomsAdaptor

from amorph.matching.database import known_polymorphs
from amorph.md.evaluators import make_evaluator
from amorph.md.potentials import load_potential
from amorph.results.provenance import measured_on
from amorph.threads import one_blas_thread


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--potentials", default="chgnet,sevennet,diep")
    parser.add_argument("--cells", type=int, default=4)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    print(measured_on())
    one_blas_thread()
    rutile = next(p for p in known_polymorphs("TiO2") if p.name == "rutile")
    cell = AseAtomsAdaptor.get_atoms(rutile.structure) * (2, 2, 2)
    cell.rattle(0.1, seed=1)
    specs = [s.strip() for s in args.potentials.split(",")]
    evaluators = {spec: make_evaluator(load_potential(spec, args.device)) for spec in specs}
    seconds = {spec: 0.0 for spec in specs}
    for evaluator in evaluators.values():
        evaluator.evaluate([cell.copy() for _ in range(args.cells)])  # warm up: first-call set-up is not the cost
    for _ in range(args.repeat):
        for spec, evaluator in evaluators.items():
            started = time.perf_counter()
            evaluator.evaluate([cell.copy() for _ in range(args.cells)])
            seconds[spec] += time.perf_counter() - started
    first = seconds[specs[0]]
    for spec in specs:
        print(f"{spec}: {seconds[spec] / args.repeat:.3f} s per call of {args.cells} x {len(cell)} atoms, "
              f"{seconds[spec] / first:.1f}x {specs[0]}")


if __name__ == "__main__":
    main()
