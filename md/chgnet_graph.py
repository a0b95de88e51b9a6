"""CHGNet's crystal graphs for a packed batch of cells, built with tensor operations on the model's device.

Why our own: CHGNet's converter builds each cell's graph on the host, per cell and per step, from a
pymatgen Structure (neighbour search, then a C routine that pairs directed bonds and lists angles).
On 2 CPU cores that was 26 ms of a 105 ms MD step for a 48-atom TiO2 cell and ~10% of a relaxation
pass. Here the atom graph comes from md.neighbours (all periodic images, reused with a skin between
steps) and the bond graph is listed for the whole batch at once; the model's own layers
(`_compute`, the radial and angular bases, the composition model) then run unchanged.

The graph is CHGNet's (chgnet.graph.converter, 0.4.x):
- atom graph: every directed pair (i, j, image n) within the atom-graph cutoff (6 A), both ways;
  each undirected bond has one feature row, shared by its two directed edges (directed2undirected);
- bond graph: for every atom, every ordered pair of distinct directed bonds leaving it that are both
  shorter than the bond-graph cutoff (3 A); a row is (atom, bond 1, bond 2) in undirected indices,
  and its angle is the one between the two directed bond vectors.
Only the order of rows differs from CHGNet's converter, so results agree to float32 summation order.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch


@dataclass
class ChgnetGraph:
    """CHGNet's graph for cells packed as in md.evaluators.CellBatch (atom indices into the batch).

    canonical (2, U) and images (U, 3): one directed edge per undirected bond (i < j, or i == j with
    the image's first non-zero component positive); directed edge k < U is canonical bond k, edge
    U + k its reverse. angle_edges (A, 2): the two directed edges of each bond-graph row.
    """

    canonical: torch.Tensor
    images: torch.Tensor
    angle_edges: torch.Tensor

    @property
    def bonds(self) -> int:
        return int(self.canonical.shape[1])

    def centres(self) -> torch.Tensor:
        """The atom each directed edge leaves from."""
        return torch.cat([self.canonical[0], self.canonical[1]])

    def neighbours(self) -> torch.Tensor:
        """The atom each directed edge goes to."""
        return torch.cat([self.canonical[1], self.canonical[0]])

    def directed_images(self) -> torch.Tensor:
        """The image shift of each directed edge's neighbour."""
        return torch.cat([self.images, -self.images])

    def atom_graph(self) -> torch.Tensor:
        """(2U, 2) int32 rows [centre, neighbour], as BatchedGraph holds them."""
        return torch.stack([self.centres(), self.neighbours()], dim=1).to(torch.int32)

    def directed2undirected(self) -> torch.Tensor:
        u = torch.arange(self.bonds, device=self.canonical.device, dtype=torch.int32)
        return torch.cat([u, u])

    def bond_graph(self) -> torch.Tensor:
        """(A, 3) int32 rows [atom, undirected bond 1, undirected bond 2], as BatchedGraph holds them."""
        first, second = self.angle_edges[:, 0], self.angle_edges[:, 1]
        return torch.stack([self.centres()[first], first % self.bonds, second % self.bonds], dim=1).to(torch.int32)

    def isolated_atoms(self, atoms: int) -> int:
        """Atoms without a single neighbour (CHGNet refuses such a cell)."""
        return int((torch.bincount(self.centres(), minlength=atoms) == 0).sum())


def canonical_half(edges: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
    """Mask of the edges that stand for their undirected bond: i < j, or i == j with the image
    lexicographically positive (an atom's bond to its own image n and to -n is one bond)."""
    i, j = edges
    n = shifts.round().long()
    positive = (n[:, 0] > 0) | ((n[:, 0] == 0) & ((n[:, 1] > 0) | ((n[:, 1] == 0) & (n[:, 2] > 0))))
    return (i < j) | ((i == j) & positive)


def build_graph(edges: torch.Tensor, shifts: torch.Tensor, lengths: torch.Tensor, atoms: int, bond_cutoff: float) -> ChgnetGraph:
    """CHGNet's graph from a full directed edge list (both directions of every bond present, as
    md.neighbours lists them) and each edge's length.

    Only the canonical half is kept and the reverses are made from it, so a bond at the cutoff whose
    two directions were measured a rounding apart still gets both edges.
    """
    keep = canonical_half(edges, shifts)
    canonical, images, short = edges[:, keep], shifts[keep], lengths[keep] < bond_cutoff
    bonds = int(canonical.shape[1])
    # directed edges leaving each atom that are short enough for the bond graph
    directed = torch.arange(2 * bonds, device=edges.device)
    centre = torch.cat([canonical[0], canonical[1]])
    chosen = directed[torch.cat([short, short])]
    chosen = chosen[torch.argsort(centre[chosen], stable=True)]
    atom = centre[chosen]
    per_atom = torch.bincount(atom, minlength=atoms)
    group_start = torch.cumsum(per_atom, 0) - per_atom
    partners = per_atom[atom]  # each short edge pairs with every short edge of its atom
    first = torch.repeat_interleave(torch.arange(len(chosen), device=edges.device), partners)
    offset = torch.arange(int(partners.sum()), device=edges.device) - torch.repeat_interleave(torch.cumsum(partners, 0) - partners, partners)
    second = group_start[atom][first] + offset
    distinct = first != second
    angle_edges = torch.stack([chosen[first[distinct]], chosen[second[distinct]]], dim=1)
    return ChgnetGraph(canonical, images, angle_edges)


def model_inputs(
    model, graph: ChgnetGraph, numbers: torch.Tensor, frac: torch.Tensor, lattices: torch.Tensor, atom_cell: torch.Tensor
) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """CHGNet's BatchedGraph for the graph, featurised by the model's own bases, as
    BatchedGraph.from_graphs does it cell by cell; plus the Cartesian positions (N, 3) and the strains
    (B, 3, 3) it was built from, whose gradients give forces and stresses.

    float32 from here on, as CHGNet's converter hands the model its graphs. Positions are
    frac @ (L (1 + strain)), so d(energy)/d(strain) at zero strain is the stress times the volume.
    """
    from chgnet.model.model import BatchedGraph

    device = lattices.device
    strains = torch.zeros(lattices.shape[0], 3, 3, dtype=torch.float32, device=device, requires_grad=True)
    strained = lattices.float() @ (torch.eye(3, dtype=torch.float32, device=device) + strains)
    positions = torch.einsum("nk,nkl->nl", frac.float(), strained[atom_cell])
    centres = graph.centres()
    images = torch.einsum("ek,ekl->el", graph.directed_images().float(), strained[atom_cell[centres]])
    vectors = positions[centres] - (positions[graph.neighbours()] + images)  # CHGNet's sign: neighbour to centre
    lengths = vectors.norm(dim=1)
    vectors = vectors / lengths[:, None]
    undirected = lengths[: graph.bonds]  # both directions of a bond share its features
    angles = graph.angle_edges
    batched = BatchedGraph(
        atomic_numbers=numbers.to(torch.int32),
        bond_bases_ag=model.bond_basis_expansion.rbf_expansion_ag(undirected),
        bond_bases_bg=model.bond_basis_expansion.rbf_expansion_bg(undirected),
        angle_bases=model.angle_basis_expansion(vectors[angles[:, 0]], vectors[angles[:, 1]]) if len(angles) else torch.tensor([]),
        batched_atom_graph=graph.atom_graph(),
        batched_bond_graph=graph.bond_graph() if len(angles) else torch.tensor([]),
        atom_owners=atom_cell.to(torch.int32),
        directed2undirected=graph.directed2undirected(),
        atom_positions=[positions],
        strains=[strains],
        volumes=torch.linalg.det(lattices).abs().float(),
    )
    return batched, positions, strains
