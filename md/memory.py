"""How many atoms one forward pass may hold on a GPU, from the free device memory and what passes cost.

A graph network's memory grows with its edges (each edge carries features and their gradients), and
edges per atom depend on the density and the cutoff. So the budget learns two numbers from the passes
it has seen, the peak bytes per edge and the edges per atom (the largest of each, to stay on the safe
side), and allows as many atoms as fit in a fraction of the free memory. Until a pass has been seen it
keeps the caller's starting size. An out-of-memory error is still handled by halving the pass
(md.batched_relax); this keeps that from being the normal way to find the size.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class DeviceMemory(Protocol):
    """What the budget needs to know of a device (torch.cuda on a GPU; a fake in tests)."""

    def start_pass(self) -> None: ...

    def pass_peak_bytes(self) -> int: ...

    def free_bytes(self) -> int: ...


class CudaMemory:
    """torch.cuda's counters: peak allocation of one pass above what was allocated before it."""

    def __init__(self, device: str = "cuda"):
        import torch

        self.cuda = torch.cuda
        self.device = device
        self.baseline = 0

    def start_pass(self) -> None:
        self.cuda.reset_peak_memory_stats(self.device)
        self.baseline = self.cuda.memory_allocated(self.device)

    def pass_peak_bytes(self) -> int:
        return int(self.cuda.max_memory_allocated(self.device) - self.baseline)

    def free_bytes(self) -> int:
        free, _total = self.cuda.mem_get_info(self.device)
        # blocks torch's caching allocator holds but does not use are free to us as well
        return int(free + self.cuda.memory_reserved(self.device) - self.cuda.memory_allocated(self.device))


@dataclass
class MemoryBudget:
    """Learns bytes per edge and edges per atom; answers how many atoms fit in `headroom` of free memory."""

    memory: DeviceMemory
    headroom: float = 0.7
    floor: int = 64
    ceiling: int = 200_000
    bytes_per_edge: float = 0.0
    edges_per_atom: float = 0.0

    def observe(self, atoms: int, edges: int, peak_bytes: int) -> None:
        if atoms <= 0 or edges <= 0 or peak_bytes <= 0:
            return
        self.bytes_per_edge = max(self.bytes_per_edge, peak_bytes / edges)
        self.edges_per_atom = max(self.edges_per_atom, edges / atoms)

    def max_atoms(self, current: int) -> int:
        """Atoms per pass for the next pass (current, until a pass has been observed)."""
        if self.bytes_per_edge <= 0:
            return current
        atoms = self.headroom * self.memory.free_bytes() / (self.bytes_per_edge * self.edges_per_atom)
        return int(min(self.ceiling, max(self.floor, atoms)))
