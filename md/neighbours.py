"""Periodic neighbour lists for many small cells at once, on the model's device, reused with a skin.

Why our own: matgl builds each graph on the host with pymatgen's find_points_in_spheres, one cell and
one step at a time, and then copies it to the device. Subcells are smaller than the model's cutoff
(a 6-atom TiO2 cell is ~3.5 A across, the cutoff 5 A), so every atom sees many periodic images, and a
relaxation shears the cell, so images have to be enumerated along the reciprocal-lattice spacings, not
the cell lengths. Here all cells of a batch are listed together with tensor operations, and each cell's
list, built with cutoff + skin, is reused while it provably still contains every pair within the cutoff.

Coordinates are fractional and unwrapped (a relaxation moves atoms continuously across cell faces);
an edge is (i, j, n): from atom i to atom j in the image shifted by the integer vector n, so its vector
is (f_j + n - f_i) @ lattice, which is exactly how matgl's Potential reads `pbc_offset`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from amorph.md.state import atom_cells, cell_starts

MAX_IMAGES_PER_AXIS = 40  # a cell thinner than cutoff / 40 along some axis has collapsed; refuse it
MAX_CANDIDATES = 4_000_000  # pair-image candidates examined in one go (memory: ~100 MB in float64)


def image_extents(lattices: torch.Tensor, cutoff: float) -> torch.Tensor:
    """Per cell and axis, the largest |n| needed for wrapped coordinates: floor(cutoff / spacing) + 1.

    The spacing between lattice planes along axis k is 1 / |column k of inv(lattice)|; with wrapped
    fractional coordinates a pair differs by less than one cell along each axis, hence the + 1.
    A cell is listable when no extent exceeds MAX_IMAGES_PER_AXIS.
    """
    spacing_inv = torch.linalg.inv(lattices).norm(dim=1)  # (B, 3): |b_k|, the reciprocal vectors without 2 pi
    return torch.floor(cutoff * spacing_inv).long() + 1


def image_ranges(lattices: torch.Tensor, cutoff: float) -> torch.Tensor:
    """image_extents, refusing a collapsed cell."""
    ranges = image_extents(lattices, cutoff)
    if bool((ranges > MAX_IMAGES_PER_AXIS).any()):
        raise ValueError(f"a cell is thinner than cutoff / {MAX_IMAGES_PER_AXIS} along some axis (collapsed cell)")
    return ranges


def edge_vectors(frac: torch.Tensor, edges, shifts: torch.Tensor, lattice_of_edge: torch.Tensor) -> torch.Tensor:
    """Cartesian vector of each edge (i, j, n), from atom i to atom j's image n: (f_j + n - f_i) @ L."""
    return torch.einsum("ek,ekl->el", frac[edges[1]] + shifts - frac[edges[0]], lattice_of_edge)


def _shift_grid(extent: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    axes = [torch.arange(-int(e), int(e) + 1, device=extent.device, dtype=dtype) for e in extent]
    return torch.cartesian_prod(*axes).reshape(-1, 3)


def periodic_edges(
    frac: torch.Tensor, lattices: torch.Tensor, counts: torch.Tensor, cutoff: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """All directed pairs closer than cutoff, over all periodic images, for cells packed in a batch.

    frac (N, 3) unwrapped fractional coordinates, lattices (B, 3, 3) row vectors, counts (B,) atoms per
    cell. Returns edge_index (2, E) into the packed atoms and integer image shifts (E, 3) (float dtype of
    frac) relative to the given, unwrapped, coordinates. An atom's interaction with its own images is
    included; with itself at zero shift it is not.
    """
    device, dtype = frac.device, frac.dtype
    floor = torch.floor(frac)
    wrapped = frac - floor
    ranges = image_ranges(lattices, cutoff)
    starts = cell_starts(counts)
    # Cells needing the same image grid go together: a chunk shares one grid, the largest range of
    # its cells per axis, so mixing a cell thin along x with one thin along y would give both an
    # 11 x 11 x 3 grid instead of 11 x 3 x 3 (on 3000 paper-grid TiO2 subcells that cost 6x).
    key = (ranges[:, 0] * (2 * MAX_IMAGES_PER_AXIS + 1) + ranges[:, 1]) * (2 * MAX_IMAGES_PER_AXIS + 1) + ranges[:, 2]
    order = torch.argsort(key, stable=True)
    edges, shifts = [], []
    chunk: list[int] = []
    budget = 0
    chunk_ranges: list[int] | None = None

    def flush() -> None:
        if chunk:
            ids = torch.tensor(chunk, device=device)
            e, s = _edges_of(wrapped, lattices, counts, starts, ids, ranges[ids].amax(dim=0), cutoff)
            edges.append(e)
            shifts.append(s)
            chunk.clear()

    counts_host, ranges_host = counts.tolist(), ranges.tolist()
    for b in order.tolist():
        grid = 1
        for r in ranges_host[b]:
            grid *= 2 * r + 1
        size = counts_host[b] ** 2 * grid
        if chunk and (budget + size > MAX_CANDIDATES or ranges_host[b] != chunk_ranges):
            flush()
            budget = 0
        chunk_ranges = ranges_host[b]
        chunk.append(b)
        budget += size
    flush()
    edge_index = torch.cat(edges, dim=1) if edges else torch.zeros(2, 0, dtype=torch.long, device=device)
    shift = torch.cat(shifts) if shifts else torch.zeros(0, 3, dtype=dtype, device=device)
    # back to the unwrapped coordinates: f_j + n - f_i = (w_j + m - w_i) with n = m - floor_j + floor_i
    shift = shift - floor[edge_index[1]] + floor[edge_index[0]]
    return edge_index, shift


def _edges_of(
    wrapped: torch.Tensor,
    lattices: torch.Tensor,
    counts: torch.Tensor,
    starts: torch.Tensor,
    cells: torch.Tensor,
    extent: torch.Tensor,
    cutoff: float,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Edges of the given cells (all pairs inside each cell x a shared image grid), filtered by distance.
    A cell too large for one go (a melt-quench cell of hundreds of atoms) is done in blocks of rows."""
    device, dtype = wrapped.device, wrapped.dtype
    grid = _shift_grid(extent, dtype)  # (S, 3)
    n = counts[cells]
    if len(cells) == 1 and int(n[0]) ** 2 * grid.shape[0] > MAX_CANDIDATES:
        size, start = int(n[0]), int(starts[cells[0]])
        rows = max(1, MAX_CANDIDATES // (size * grid.shape[0]))
        j_all = torch.arange(start, start + size, device=device)
        parts = []
        for first in range(start, start + size, rows):
            i_block = torch.arange(first, min(first + rows, start + size), device=device)
            i = i_block.repeat_interleave(size)
            j = j_all.repeat(len(i_block))
            parts.append(_within(wrapped, lattices[cells[0]].expand(len(i), 3, 3), i, j, grid, cutoff))
        return torch.cat([p[0] for p in parts], dim=1), torch.cat([p[1] for p in parts])
    pairs_per_cell = n * n
    pair_cell = torch.repeat_interleave(cells, pairs_per_cell)
    first_pair = torch.cumsum(pairs_per_cell, 0) - pairs_per_cell
    k = torch.arange(int(pairs_per_cell.sum()), device=device) - torch.repeat_interleave(first_pair, pairs_per_cell)
    n_of_pair = torch.repeat_interleave(n, pairs_per_cell)
    i = starts[pair_cell] + k // n_of_pair
    j = starts[pair_cell] + k % n_of_pair
    return _within(wrapped, lattices[pair_cell], i, j, grid, cutoff)


def _within(
    wrapped: torch.Tensor, lattice_of_pair: torch.Tensor, i: torch.Tensor, j: torch.Tensor, grid: torch.Tensor, cutoff: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """The (pair, image) combinations closer than cutoff, self at zero shift excluded."""
    diff = (wrapped[j] - wrapped[i])[:, None, :] + grid[None, :, :]  # (P, S, 3)
    vectors = torch.einsum("psk,pkl->psl", diff, lattice_of_pair)
    dist2 = (vectors * vectors).sum(-1)
    self_image = (i == j)[:, None] & (grid == 0).all(dim=1)[None, :]
    keep = (dist2 < cutoff * cutoff) & ~self_image
    p, s = keep.nonzero(as_tuple=True)
    return torch.stack([i[p], j[p]]), grid[s]


@dataclass
class _CellList:
    frac0: torch.Tensor  # (n, 3) coordinates when listed
    lattice0: torch.Tensor  # (3, 3)
    edges: torch.Tensor  # (2, E) local atom indices
    shifts: torch.Tensor  # (E, 3)


class SkinNeighbours:
    """Neighbour lists kept per cell (by a caller's key) and rebuilt only when they could be stale.

    A list built at cutoff + skin still holds every pair now within cutoff while
        sigma_min(inv(L0) L) * (cutoff + skin) - 2 * max_i |(f_i - f0_i) L| >= cutoff,
    (L0, f0 at listing, L, f now): a strain can shrink a listed distance by at most the factor
    sigma_min, and two atoms' own moves by at most twice the largest move. Each step the candidate
    edges are re-measured and cut at the cutoff, so the model sees exactly the fresh list's edges.
    """

    def __init__(self, cutoff: float, skin: float = 1.0):
        self.cutoff, self.skin = cutoff, skin
        self.lists: dict[int, _CellList] = {}
        self.rebuilt = 0  # cells listed afresh, for tests and benchmarks

    def forget(self, keys: list[int]) -> None:
        for key in keys:
            self.lists.pop(key, None)

    def edges(
        self, frac: torch.Tensor, lattices: torch.Tensor, counts: torch.Tensor, keys: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Edges within cutoff for the packed cells (as periodic_edges), reusing each key's list when safe."""
        starts = cell_starts(counts)
        counts_host, starts_host = counts.tolist(), starts.tolist()
        stale = self._stale(frac, lattices, counts, counts_host, keys)
        if stale:
            self._rebuild(stale, frac, lattices, counts_host, starts_host, keys)
        lists = [self.lists[key] for key in keys]
        edge_counts = torch.tensor([c.edges.shape[1] for c in lists], device=frac.device)
        edges = torch.cat([c.edges for c in lists], dim=1) + torch.repeat_interleave(starts, edge_counts)[None, :]
        shifts = torch.cat([c.shifts for c in lists])
        edge_cell = torch.repeat_interleave(torch.arange(len(keys), device=frac.device), edge_counts)
        vectors = edge_vectors(frac, edges, shifts, lattices[edge_cell])
        within = (vectors * vectors).sum(-1) < self.cutoff * self.cutoff
        return edges[:, within], shifts[within]

    def _stale(
        self, frac: torch.Tensor, lattices: torch.Tensor, counts: torch.Tensor, sizes: list[int], keys: list[int]
    ) -> list[int]:
        """Cells without a list or whose list may miss a pair (one vectorised test for the whole batch)."""
        for key, n in zip(keys, sizes):  # a key now naming a cell of another size is listed afresh
            if key in self.lists and self.lists[key].frac0.shape[0] != n:
                del self.lists[key]
        missing = [b for b, key in enumerate(keys) if key not in self.lists]
        if len(missing) == len(keys):
            return missing
        atom_cell = atom_cells(counts)
        frac0 = torch.cat([self.lists[key].frac0 if key in self.lists else frac.new_zeros(int(n), 3) for key, n in zip(keys, sizes)])
        eye = torch.eye(3, dtype=lattices.dtype, device=lattices.device)
        lattice0 = torch.stack([self.lists[key].lattice0 if key in self.lists else eye for key in keys])
        shrink = torch.linalg.svdvals(torch.linalg.solve(lattice0, lattices)).amin(dim=1)
        moved_atom = torch.einsum("nk,nkl->nl", frac - frac0, lattices[atom_cell]).norm(dim=1)
        moved = torch.zeros(len(keys), dtype=frac.dtype, device=frac.device).scatter_reduce(0, atom_cell, moved_atom, reduce="amax")
        fresh = (shrink * (self.cutoff + self.skin) - 2 * moved >= self.cutoff).tolist()
        return sorted(set(missing) | {b for b, ok in enumerate(fresh) if not ok})

    def _rebuild(self, cells: list[int], frac, lattices, counts_host, starts_host, keys) -> None:
        idx = torch.cat([torch.arange(starts_host[b], starts_host[b] + counts_host[b], device=frac.device) for b in cells])
        sub_counts = torch.tensor([counts_host[b] for b in cells], device=frac.device)
        sub_frac = frac[idx]
        edges, shifts = periodic_edges(sub_frac, lattices[cells], sub_counts, self.cutoff + self.skin)
        sub_starts = cell_starts(sub_counts)
        owner = torch.bucketize(edges[0], sub_starts, right=True) - 1
        for k, b in enumerate(cells):
            mine = owner == k
            local = edges[:, mine] - sub_starts[k]
            self.lists[keys[b]] = _CellList(
                sub_frac[sub_starts[k] : sub_starts[k] + counts_host[b]].clone(), lattices[b].clone(), local, shifts[mine]
            )
        self.rebuilt += len(cells)
