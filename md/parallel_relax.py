"""On a multi-core CPU: relax subcells in several worker processes, each running the batched engine.

Measured on 2 cores (CHGNet, 6-atom TiO2 cells): one cell per call costs 40 ms with 2 torch threads
and 48 ms with 1; batching 16 cells brings it to 27 ms (2 threads) or 40 ms (1 thread). Small cells
give torch's intra-op threads little to share, so on a CPU the fastest layout is one worker process
per core with one torch thread each, each worker batching the cells it takes. On a GPU one process
with large batches is fastest, and this module is not used.

The cells go to the workers in small fixed chunks, each taken by whichever worker is free, so a worker
whose cells happen to need many steps does not hold up the run (TensorNet stand-in, 16 TiO2 subcells:
round-robin halves of 9078 and 12078 atom-steps). Chunks rather than single cells because a chunk is
relaxed by relax_many exactly as it would be in any worker, so the run stays reproducible: which
cells share a batched pass can change a cell's float32 rounding, and which worker is free first
depends on timing.
"""

from __future__ import annotations

import contextvars
import math
import multiprocessing
import os
import queue
import signal
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from ase import Atoms

from amorph.md.relax import RelaxResult

if TYPE_CHECKING:
    from amorph.md.evaluators import BatchEvaluator

MIN_CELLS_PER_WORKER = 8  # below this, starting workers (import torch, load the model) costs more than it saves


# The cores a task may use, set by whoever shares a machine's cores out (amorph.screen gives each
# formula its share with core_budget); a context variable, so that it travels with the task and no
# setting goes through the environment.
_CORE_BUDGET: contextvars.ContextVar[int | None] = contextvars.ContextVar("core_budget", default=None)


@contextmanager
def core_budget(cores: int | None) -> Iterator[None]:
    """Within this block cpu_workers() is `cores` (None: as it would be without the block)."""
    token = _CORE_BUDGET.set(cores)
    try:
        yield
    finally:
        _CORE_BUDGET.reset(token)


def cpu_workers() -> int:
    """Cores this process may use: 1 in a daemon process (a Dask worker's), which may not start
    children; the core_budget a screen gives its task; AMORPH_CORES when the user sets it (a batch
    script sharing a node); else the cores the OS lets it run on."""
    if multiprocessing.current_process().daemon:
        return 1
    budget = _CORE_BUDGET.get()
    if budget is not None:
        return max(1, budget)
    given = os.environ.get("AMORPH_CORES", "")
    if given.isdigit() and int(given) > 0:
        return int(given)
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def worker_count(n_cells: int, device: str, potential_name: str) -> int:
    """How many processes to relax n_cells with: 1 on a GPU, for analytic potentials, or for little work."""
    if device != "cpu" or not (potential_name == "chgnet" or potential_name.startswith("matgl:")):
        return 1
    return max(1, min(cpu_workers(), n_cells // MIN_CELLS_PER_WORKER))


MAX_CHUNK = 64  # cells per chunk at most: several full batches, and still many chunks in a large run


def chunk_bounds(n_cells: int, workers: int) -> list[tuple[int, int]]:
    """(start, stop) of each chunk: each holds about half a worker's share of the cells still left
    ("guided" scheduling), so chunks shrink towards the end and the last ones balance the workers.

    Large chunks batch better (each chunk's batch empties at its end) but leave one worker alone with
    the last of them: fixed chunks of a quarter of the cells left one worker idle for the last ~50 s
    of a 129 s relaxation (TiO2 quick preset, CHGNet; the measurements are in docs/log/performance.md).
    The bounds depend only on n_cells and workers, so runs stay reproducible."""
    bounds, start = [], 0
    while start < n_cells:
        size = max(1, min(MAX_CHUNK, math.ceil((n_cells - start) / (2 * workers))))
        bounds.append((start, start + size))
        start += size
    return bounds


_LOADED: dict[tuple[str, bool], BatchEvaluator] = {}  # in a worker: the evaluator, loaded once per process
_FINISHED: Any = None  # in a worker: the queue its results go back on (given when the process starts)


def _set_finished(results) -> None:
    """Worker start: where results go; Ctrl-C reaches the whole process group, and the main process
    alone handles it (the workers are stopped by it), so a worker does not print a traceback."""
    global _FINISHED
    _FINISHED = results
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _relax_chunk(cells: list[Atoms], first: int, potential_name: str, batched: bool, fmax: float, max_steps: int, threads: int) -> None:
    """In a worker: relax one chunk with the batched engine; put (index, RelaxResult) on the results
    queue as each is done."""
    from amorph.md.batched_relax import relax_many

    key = (potential_name, batched)
    if key not in _LOADED:  # first task in this process: quiet warnings, one thread, load the model
        import warnings

        import torch

        from amorph.md.evaluators import make_evaluator
        from amorph.md.potentials import load_potential

        if not os.environ.get("PYTHONWARNINGS"):  # as in the CLI: library-internal warnings are noise here
            warnings.simplefilter("ignore")
        torch.set_num_threads(threads)
        _LOADED[key] = make_evaluator(load_potential(potential_name, "cpu"), batched=batched)
    relax_many(cells, _LOADED[key], fmax, max_steps, on_done=lambda i, r: _FINISHED.put((first + i, r)))


class WorkerPool:
    """Worker processes kept for several relax_in_processes calls (the rounds of --max-subcells auto),
    so each round does not pay for starting processes, importing torch and loading the model again."""

    def __init__(self, workers: int):
        self.workers = workers
        self._context = multiprocessing.get_context("spawn")  # torch is not fork-safe

    def __enter__(self) -> WorkerPool:
        # a plain queue handed to each worker as it starts (no Manager process: that cost 1.2 s to start)
        self.finished = self._context.Queue()
        self.pool = ProcessPoolExecutor(self.workers, self._context, initializer=_set_finished, initargs=(self.finished,))
        return self

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        if kind is not None:
            # stopped (Ctrl-C, SIGTERM, an error): a worker would otherwise finish its chunk first and
            # hold the exit for a minute. ProcessPoolExecutor has no public way to stop running
            # workers; its process table is the one handle there is.
            for process in list(getattr(self.pool, "_processes", {}).values()):
                process.terminate()
        # the results are in; let the workers wind down (about 1 s) while this process goes on
        self.pool.shutdown(wait=False, cancel_futures=True)


def relax_in_processes(
    cells: Sequence[Atoms],
    potential_name: str,
    workers: int,
    batched: bool,
    fmax: float,
    max_steps: int,
    on_done: Callable[[int, RelaxResult], None] | None = None,
    pool: WorkerPool | None = None,
) -> list[RelaxResult]:
    """Relax cells in `workers` processes (those of `pool` when given), chunk by chunk; input order kept.
    on_done(index, result) is called in this process each time a worker finishes a cell."""
    if pool is None:
        with WorkerPool(workers) as fresh:
            return relax_in_processes(cells, potential_name, workers, batched, fmax, max_steps, on_done, fresh)
    threads = max(1, cpu_workers() // workers)
    futures = [
        pool.pool.submit(_relax_chunk, list(cells[start:stop]), start, potential_name, batched, fmax, max_steps, threads)
        for start, stop in chunk_bounds(len(cells), workers)
    ]
    results: list[RelaxResult | None] = [None] * len(cells)
    received = 0
    while received < len(cells):
        failed = next((f for f in futures if f.done() and f.exception()), None)
        if failed is not None:
            failed.result()  # raises the worker's error here
        try:
            index, result = pool.finished.get(timeout=1.0)
        except queue.Empty:
            continue
        results[index] = result
        received += 1
        if on_done is not None:
            on_done(index, result)
    return [r for r in results if r is not None]
