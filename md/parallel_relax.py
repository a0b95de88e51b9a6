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


def _relax_shard(
    cells: list[Atoms], potential_name: str, batched: bool, fmax: float, max_steps: int, threads: int, ticks
) -> list[RelaxResult]:
    import warnings

    import torch

    from md.batched_relax import relax_many

    if not os.environ.get("PYTHONWARNINGS"):  # as in the CLI: library-internal warnings are noise here
        warnings.simplefilter("ignore")
    from md.evaluators import make_evaluator
    from md.potentials import load_potential

    torch.set_num_threads(threads)
    potential = load_potential(potential_name, "cpu")
    evaluator = make_evaluator(potential, batched=batched)
    return relax_many(cells, evaluator, fmax, max_steps, on_done=lambda _i, _r: ticks.put(1))


def relax_in_processes(
    cells: Sequence[Atoms],
    potential_name: str,
    workers: int,
    batched: bool,
    fmax: float,
    max_steps: int,
    on_progress: Callable[[], None] | None = None,
) -> list[RelaxResult]:
    """Relax cells round-robin over `workers` processes (spawned: torch is not fork-safe); input order kept.
    on_progress() is called in this process each time a worker finishes a cell."""
    threads = max(1, cpu_workers() // workers)
    shards = [list(range(k, len(cells), workers)) for k in range(workers)]
    context = multiprocessing.get_context("spawn")
    results: list[RelaxResult | None] = [None] * len(cells)
    with context.Manager() as manager:
        ticks = manager.Queue()
        with ProcessPoolExecutor(max_workers=workers, mp_context=context) as pool:
            futures = [
                pool.submit(_relax_shard, [cells[i] for i in shard], potential_name, batched, fmax, max_steps, threads, ticks)
                for shard in shards
            ]
            reported = 0
            while reported < len(cells) and not any(f.done() and f.exception() for f in futures):
                try:
                    ticks.get(timeout=1.0)
                except Exception:  # queue.Empty through the manager proxy
                    continue
                reported += 1
                if on_progress is not None:
                    on_progress()
            for shard, future in zip(shards, futures):
                for index, result in zip(shard, future.result()):
                    results[index] = result
    return [r for r in results if r is not None]
