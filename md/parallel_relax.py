"""On a multi-core CPU: relax subcells in several worker processes, each running the batched engine.

Measured on 2 cores (CHGNet, 6-atom TiO2 cells): one cell per call costs 40 ms with 2 torch threads
and 48 ms with 1; batching 16 cells brings it to 27 ms (2 threads) or 40 ms (1 thread). Small cells
give torch's intra-op threads little to share, so on a CPU the fastest layout is one worker process
per core with one torch thread each, each worker batching its own share of the cells. On a GPU one
process with large batches is fastest, and this module is not used.
"""

from __future__ import annotations

import multiprocessing
import os
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import ExitStack

from ase import Atoms

from md.relax import RelaxResult

MIN_CELLS_PER_WORKER = 8  # below this, starting workers (import torch, load the model) costs more than it saves


def cpu_workers() -> int:
    """Cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def worker_count(n_cells: int, device: str, potential_name: str) -> int:
    """How many processes to relax n_cells with: 1 on a GPU, for analytic potentials, or for little work."""
    if device != "cpu" or not (potential_name == "chgnet" or potential_name.startswith("matgl:")):
        return 1
    return max(1, min(cpu_workers(), n_cells // MIN_CELLS_PER_WORKER))


_LOADED: dict[tuple[str, bool], object] = {}  # in a worker: the evaluator, loaded once per process


def _relax_shard(
    cells: list[Atoms], potential_name: str, batched: bool, fmax: float, max_steps: int, threads: int, ticks
) -> list[RelaxResult]:
    from md.batched_relax import relax_many

    key = (potential_name, batched)
    if key not in _LOADED:  # first task in this process: quiet warnings, one thread, load the model
        import warnings

        import torch

        from md.evaluators import make_evaluator
        from md.potentials import load_potential

        if not os.environ.get("PYTHONWARNINGS"):  # as in the CLI: library-internal warnings are noise here
            warnings.simplefilter("ignore")
        torch.set_num_threads(threads)
        _LOADED[key] = make_evaluator(load_potential(potential_name, "cpu"), batched=batched)
    return relax_many(cells, _LOADED[key], fmax, max_steps, on_done=lambda _i, _r: ticks.put(1))  # type: ignore[arg-type]


class WorkerPool:
    """Worker processes kept for several relax_in_processes calls (the rounds of --max-subcells auto),
    so each round does not pay for starting processes, importing torch and loading the model again."""

    def __init__(self, workers: int):
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")  # torch is not fork-safe
        self._stack = ExitStack()

    def __enter__(self) -> WorkerPool:
        manager = self._stack.enter_context(self._context.Manager())
        self.ticks = manager.Queue()
        self.pool = self._stack.enter_context(ProcessPoolExecutor(max_workers=self.workers, mp_context=self._context))
        return self

    def __exit__(self, *exc) -> None:
        self._stack.close()


def relax_in_processes(
    cells: Sequence[Atoms],
    potential_name: str,
    workers: int,
    batched: bool,
    fmax: float,
    max_steps: int,
    on_progress: Callable[[], None] | None = None,
    pool: WorkerPool | None = None,
) -> list[RelaxResult]:
    """Relax cells round-robin over `workers` processes (those of `pool` when given); input order kept.
    on_progress() is called in this process each time a worker finishes a cell."""
    if pool is None:
        with WorkerPool(workers) as fresh:
            return relax_in_processes(cells, potential_name, workers, batched, fmax, max_steps, on_progress, fresh)
    threads = max(1, cpu_workers() // workers)
    shards = [list(range(k, len(cells), workers)) for k in range(workers)]
    results: list[RelaxResult | None] = [None] * len(cells)
    futures = [
        pool.pool.submit(_relax_shard, [cells[i] for i in shard], potential_name, batched, fmax, max_steps, threads, pool.ticks)
        for shard in shards
    ]
    reported = 0
    while reported < len(cells) and not any(f.done() and f.exception() for f in futures):
        try:
            pool.ticks.get(timeout=1.0)
        except Exception:  # queue.Empty through the manager proxy
            continue
        reported += 1
        if on_progress is not None:
            on_progress()
    for shard, future in zip(shards, futures):
        for index, result in zip(shard, future.result()):
            results[index] = result
    return [r for r in results if r is not None]
