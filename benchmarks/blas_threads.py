"""What one BLAS thread (amorph.threads.one_blas_thread, applied where a run starts) buys.

ASE's FIRE + FrechetCellFilter does its 3x3 linear algebra in numpy/scipy (OpenBLAS); with OpenBLAS's
default threads, its idle threads busy-wait after each call and take the cores from torch's threads.
This times one-at-a-time relaxation steps of TiO2 subcell-sized cells with a torch potential, with
OpenBLAS's default thread count and with one thread, in turns within one process (threadpoolctl
switches the limit), and prints the ratio.

    python benchmarks/blas_threads.py [--potential matgl:benchmarks/models/tensornet-tio2-stand-in] [--steps 20]
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
from ase.filters import FrechetCellFilter
from ase.optimize import FIRE
from threadpoolctl import ThreadpoolController

from amorph.md.potentials import load_potential
from amorph.results.provenance import measured_on

STAND_IN = "matgl:benchmarks/models/tensornet-tio2-stand-in"


def cell(seed: int):
    """A rattled, strained 6-atom rutile cell: the size of a quick-preset subcell."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    rutile = Structure(Lattice.tetragonal(4.59, 2.96), ["Ti", "Ti", "O", "O", "O", "O"],
                       [[0, 0, 0], [0.5, 0.5, 0.5], [0.305, 0.305, 0], [0.695, 0.695, 0], [0.805, 0.195, 0.5], [0.195, 0.805, 0.5]])
    atoms = AseAtomsAdaptor.get_atoms(rutile)
    rng = np.random.default_rng(seed)
    atoms.set_cell(atoms.cell.array @ (np.eye(3) + rng.normal(0, 0.03, (3, 3))), scale_atoms=True)
    atoms.rattle(0.1, seed=seed)
    return atoms


def seconds_per_step(calculator, steps: int, seed: int) -> float:
    atoms = cell(seed)
    atoms.calc = calculator
    optimizer = FIRE(FrechetCellFilter(atoms), logfile=None)
    started = time.perf_counter()
    optimizer.run(fmax=1e-9, steps=steps)
    return (time.perf_counter() - started) / max(1, optimizer.nsteps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--potential", default=STAND_IN)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(measured_on())
    warnings.simplefilter("ignore")
    calculator = load_potential(args.potential, "cpu").make_calculator()
    controller = ThreadpoolController()
    default = max(p["num_threads"] for p in controller.info() if p["internal_api"] == "openblas")
    times: dict[int, list[float]] = {default: [], 1: []}
    seconds_per_step(calculator, 3, 99)  # warm up
    for k in range(args.rounds):
        for threads in (default, 1):
            with controller.limit(limits=threads, user_api="blas"):
                times[threads].append(seconds_per_step(calculator, args.steps, k))
    many, one = float(np.median(times[default])), float(np.median(times[1]))
    print(f"OpenBLAS {default} threads: {1e3 * many:.1f} ms per FIRE step; 1 thread: {1e3 * one:.1f} ms")
    print(f"ratio (default threads / one thread): {many / one:.2f}")


if __name__ == "__main__":
    main()
