"""One entry point for relaxing many subcells: it chooses how, so the pipeline never has to.

- `sequential`: the potential's plain ASE calculator, one cell per call, in this process.
- `batched`: many cells per forward pass (md.batched_relax); on a multi-core CPU with a torch model
  and enough cells, in worker processes with one torch thread each (md.parallel_relax), which is
  faster there; on a GPU, in this process with large passes.
Both take the same FIRE steps (md.fire), so only the speed differs between them.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from types import TracebackType

from ase import Atoms

from amorph.md.batched_relax import relax_many
from amorph.md.evaluators import BatchEvaluator, make_evaluator
from amorph.md.parallel_relax import WorkerPool, relax_in_processes, worker_count
from amorph.md.potentials import LoadedPotential
from amorph.md.relax import RelaxResult
from amorph.settings import Engine


class Relaxer:
    """Relaxes lists of cells with one potential, engine and tolerance.

    A context manager: when worker processes pay off for `expected_cells` (the largest list it will be
    given), they are started once and kept for every `relax` call, so the rounds of
    `--max-subcells auto` do not each pay for starting processes and loading the model.
    """

    def __init__(self, potential: LoadedPotential, engine: Engine, fmax: float, max_steps: int, expected_cells: int):
        self.potential = potential
        self.fmax, self.max_steps = fmax, max_steps
        self.evaluator: BatchEvaluator = make_evaluator(potential, batched=engine == "batched")
        self.workers = worker_count(expected_cells, potential.device, potential.base_name) if engine == "batched" else 1
        self.pool: WorkerPool | None = None

    def __enter__(self) -> Relaxer:
        if self.workers > 1:
            self.pool = WorkerPool(self.workers).__enter__()
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None) -> None:
        if self.pool is not None:
            self.pool.__exit__(kind, error, trace)
            self.pool = None

    def relax(self, cells: Sequence[Atoms], on_done: Callable[[int, RelaxResult], None] | None = None) -> list[RelaxResult]:
        """Relax the cells (results in their order); on_done(index, result) is called as each one finishes."""
        pool = self.pool
        if pool is not None and cells:
            # once there are workers, every call uses them, even a last small round: relaxed in this
            # process instead (two torch threads) the same cells came out 1e-6 to 6e-4 A apart from one
            # run to the next (docs/log/performance.md, X3), so same-seed runs were not identical
            return relax_in_processes(cells, self.potential.name, pool.workers, True, self.fmax, self.max_steps, on_done=on_done, pool=pool)
        return relax_many(cells, self.evaluator, self.fmax, self.max_steps, on_done=on_done)
