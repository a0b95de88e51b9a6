"""The optimizer's own cost per cell and FIRE step: one ASE FIRE + FrechetCellFilter per cell vs md.fire.

The potential is replaced by a free stand-in (the same fixed forces and stress for every cell, in both
paths), so what is timed is the host work around each force call: on a GPU, where a batched forward
pass costs well under a millisecond per small cell, this is what limits a paper-scale run.

    python benchmarks/optimizer_overhead.py            # 500 six-atom cells, 20 steps each
    python benchmarks/optimizer_overhead.py --small    # 100 cells

Last line: `ratio: <one-at-a-time cost / batched cost>` per cell-step.
"""

from __future__ import annotations

import argparse
import time
import warnings

import numpy as np
import torch
from ase.build import bulk
from ase.calculators.calculator import Calculator

from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import BatchEvaluator, BatchResult, CellBatch
from amorph.md.relax import relax
from amorph.results.provenance import measured_on
from amorph.threads import one_blas_thread

FORCE, STRESS = 0.3, 0.01  # eV/A on every atom component, eV/A^3 on the stress diagonal


class FixedCalculator(Calculator):
    """ASE side of the stand-in."""

    implemented_properties = ["energy", "free_energy", "forces", "stress"]  # noqa: RUF012

    def calculate(self, atoms=None, properties=None, system_changes=None):  # type: ignore[override]
        super().calculate(atoms, properties, system_changes)
        n = len(self.atoms)
        self.results = {"energy": 0.0, "free_energy": 0.0, "forces": np.full((n, 3), FORCE),
                        "stress": np.array([STRESS, STRESS, STRESS, 0.0, 0.0, 0.0])}


class FixedEvaluator(BatchEvaluator):
    """Batched side of the stand-in."""

    max_atoms = 10**9

    def evaluate_batch(self, batch: CellBatch) -> BatchResult:
        n, b = batch.positions.shape[0], batch.cells.shape[0]
        eye = torch.eye(3, dtype=torch.float64, device=batch.positions.device)
        return BatchResult(batch.positions.new_zeros(b), batch.positions.new_full((n, 3), FORCE), (STRESS * eye).expand(b, 3, 3).clone())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--cells", type=int, default=500)
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--small", action="store_true", help="100 cells")
    args = parser.parse_args()
    print(measured_on())
    one_blas_thread()  # as a run does (amorph.threads)
    warnings.simplefilter("ignore")
    torch.set_num_threads(1)
    n = 100 if args.small else args.cells
    cells = [bulk("Cu", "fcc", a=3.6).repeat((1, 2, 3)) for _ in range(n)]
    cell_steps = n * (args.steps + 1)

    started = time.perf_counter()
    sequential = [relax(c, FixedCalculator(), 1e-9, args.steps) for c in cells]
    t_seq = time.perf_counter() - started
    print(f"one ASE FIRE + FrechetCellFilter per cell: {1e6 * t_seq / cell_steps:.1f} us per cell-step")

    started = time.perf_counter()
    batched = relax_many(cells, FixedEvaluator(), 1e-9, args.steps)
    t_batch = time.perf_counter() - started
    print(f"md.fire, {n} cells in flight: {1e6 * t_batch / cell_steps:.1f} us per cell-step")

    worst = max(float(np.abs(a.atoms.positions - b.atoms.positions).max()) for a, b in zip(sequential, batched))
    print(f"same trajectories: largest position difference {worst:.1e} A after {args.steps} steps")
    print(f"ratio: {t_seq / t_batch:.1f}")


if __name__ == "__main__":
    main()
