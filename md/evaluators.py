"""Energies, forces and stresses of many periodic cells in one call: the part of a potential that batches.

Every evaluator answers `evaluate(cells) -> list[Evaluation]` and, for the packed optimizer
(md.fire), `evaluate_batch(CellBatch) -> BatchResult` (md.state), in ASE units (eV, eV/A, eV/A^3, ASE's stress
sign). `AseEvaluator` loops over any ASE calculator one cell at a time (EMT, or a potential without a
batched path); `MatglEvaluator` and `ChgnetEvaluator` put many cells in one graph batch and run one
forward/backward pass for all of them.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import torch
from ase import Atoms
from ase import units as ase_units
from ase.data import atomic_numbers

from amorph.md.chgnet_graph import build_graph, model_inputs
from amorph.md.memory import CudaMemory, DeviceMemory, MemoryBudget
from amorph.md.neighbours import SkinNeighbours, edge_vectors, periodic_edges
from amorph.md.potentials import LoadedPotential
from amorph.md.state import BatchResult, CellBatch, Evaluation, atom_cells

_KEYS = itertools.count()


def new_keys(n: int) -> list[int]:
    """n cell names never handed out before in this process (for CellBatch.keys)."""
    return [next(_KEYS) for _ in range(n)]


class BatchEvaluator:
    """Evaluates cells: `evaluate(list of Atoms)`, and `evaluate_batch(CellBatch)` for the packed optimizer.

    `max_atoms` is how many atoms one forward pass should hold; `device` is where the packed tensors
    live. The base class answers evaluate_batch through evaluate, for evaluators without a packed path.
    """

    max_atoms: int
    device: str = "cpu"

    def evaluate(self, cells: Sequence[Atoms], keys: list[int] | None = None) -> list[Evaluation]:
        """keys (see CellBatch) let an evaluator reuse what it kept for the same cells last time."""
        raise NotImplementedError

    def evaluate_batch(self, batch: CellBatch) -> BatchResult:
        return BatchResult.from_evaluations(self.evaluate(batch.to_atoms()), batch.positions.device)

    def forget(self, keys: list[int]) -> None:
        """The cells with these keys are done; drop what was kept for them."""

    def out_of_memory(self, atoms_in: int) -> None:
        """A pass of atoms_in atoms did not fit: make the next ones smaller."""
        self.max_atoms = max(1, atoms_in // 2)


class AseEvaluator(BatchEvaluator):
    """Any ASE calculator, one cell at a time (the reference path the batched ones must agree with)."""

    def __init__(self, potential: LoadedPotential):
        self.calculator = potential.make_calculator()
        self.max_atoms = 1  # one cell per call

    def evaluate(self, cells: Sequence[Atoms], keys: list[int] | None = None) -> list[Evaluation]:
        out = []
        for cell in cells:
            atoms = cell.copy()
            atoms.calc = self.calculator
            stress = atoms.get_stress(voigt=False)
            out.append(Evaluation(float(atoms.get_potential_energy()), atoms.get_forces().copy(), stress.copy()))
        return out


class _GraphEvaluator(BatchEvaluator):
    """A torch model on graphs we list ourselves (md.neighbours), cells with keys keeping their lists;
    on a GPU the passes are sized from the free memory (md.memory)."""

    neighbours: SkinNeighbours
    budget: MemoryBudget | None = None
    max_atoms: int

    def _setup_budget(self, device: str, memory: DeviceMemory | None) -> None:
        if memory is None and device.startswith("cuda"):
            memory = CudaMemory(device)
        self.budget = MemoryBudget(memory) if memory is not None else None

    def _start_pass(self) -> None:
        if self.budget is not None:
            self.budget.memory.start_pass()

    def _end_pass(self, atoms: int, edges: int) -> None:
        if self.budget is not None:
            self.budget.observe(atoms, edges, self.budget.memory.pass_peak_bytes())
            self.max_atoms = self.budget.max_atoms(self.max_atoms)

    def out_of_memory(self, atoms_in: int) -> None:
        super().out_of_memory(atoms_in)  # BatchEvaluator's halving
        if self.budget is not None:
            self.budget.headroom *= 0.7  # the estimate was too bold; stay further from the edge

    def forget(self, keys: list[int]) -> None:
        self.neighbours.forget(keys)

    def evaluate(self, cells: Sequence[Atoms], keys: list[int] | None = None) -> list[Evaluation]:
        batch = CellBatch.from_atoms(cells, self.device, keys)
        return self.evaluate_batch(batch).evaluations([len(c) for c in cells])

    def _listed(self, batch: CellBatch) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """The batch on the model's device, with its edges within the cutoff: counts, lattices, the cell
        of each atom, unwrapped fractional coordinates, edges (2, E) and image shifts (E, 3)."""
        device = self.device
        counts = batch.counts.to(device)
        lattices = batch.cells.to(device)
        atom_cell = atom_cells(counts)
        frac = torch.linalg.solve(lattices[atom_cell].transpose(1, 2), batch.positions.to(device).unsqueeze(-1)).squeeze(-1)
        if batch.keys is None:
            edges, shifts = periodic_edges(frac, lattices, counts, self.neighbours.cutoff)
        else:
            edges, shifts = self.neighbours.edges(frac, lattices, counts, batch.keys)
        return counts, lattices, atom_cell, frac, edges, shifts


class MatglEvaluator(_GraphEvaluator):
    """A matgl PES model on one PyTorch Geometric batch: one forward and one backward pass for all cells.

    The graph is built here, on the model's device (md.neighbours), not by matgl's per-cell host
    converter; cells that carry keys keep their neighbour list between steps (skin 1 A).
    """

    def __init__(
        self, potential: LoadedPotential, max_atoms: int, skin: float = 1.0, memory: DeviceMemory | None = None
    ):
        self.potential = potential.torch_model()
        self.device = potential.device
        model = self.potential.model
        self.neighbours = SkinNeighbours(float(model.cutoff), skin)
        # atomic number -> index in the model's element list (-1: not covered)
        lookup = torch.full((120,), -1, dtype=torch.long)
        for k, symbol in enumerate(model.element_types):
            lookup[atomic_numbers[symbol]] = k
        self.node_types = lookup.to(self.device)
        self.max_atoms = max_atoms
        self._setup_budget(self.device, memory)

    def evaluate_batch(self, batch: CellBatch) -> BatchResult:
        from torch_geometric.data import Batch

        device = torch.device(self.device)
        counts, lattices, atom_cell, frac, edges, shifts = self._listed(batch)
        node_type = self.node_types[batch.numbers.to(device)]
        if bool((node_type < 0).any()):
            raise ValueError("an element is not covered by the model")
        dtype, index_dtype = matgl_dtypes()
        graph = Batch(
            node_type=node_type,
            frac_coords=frac.to(dtype),
            # matgl's own converter gives int32 edges; with int64 the TensorNet's index_add aggregation
            # ran 15% slower (48-atom TiO2, 2 CPU cores: 110 ms vs 94 ms per call)
            edge_index=edges.to(index_dtype),
            pbc_offset=shifts.to(dtype),
            batch=atom_cell,
            ptr=torch.cat([counts.new_zeros(1), torch.cumsum(counts, 0)]),
            num_nodes=int(atom_cell.shape[0]),
        )
        state = torch.zeros(len(counts), 2, dtype=dtype, device=device)
        self._start_pass()
        energies, forces, stresses = self.potential(graph, lattices.to(dtype), state)[:3]
        self._end_pass(int(atom_cell.shape[0]), int(edges.shape[1]))
        out_device = batch.positions.device
        # matgl: stresses (3B, 3) in GPa; ASE wants eV/A^3 (PESCalculator multiplies by units.GPa too)
        return BatchResult(
            energies.detach().reshape(-1).to(out_device, torch.float64),
            forces.detach().to(out_device, torch.float64),
            stresses.detach().reshape(-1, 3, 3).to(out_device, torch.float64) * ase_units.GPa,
        )


def matgl_dtypes() -> tuple[torch.dtype, torch.dtype]:
    """matgl's float and integer types (float32 and int32 unless changed with matgl.set_default_dtype)."""
    import matgl

    return matgl.float_th, matgl.int_th


class ChgnetEvaluator(_GraphEvaluator):
    """CHGNet on one batched crystal graph: one forward pass and one backward pass for all cells.

    The graphs (atom graph at 6 A, bond graph at 3 A for the angle terms) are built here for the
    whole batch on the model's device (md.chgnet_graph), and cells that carry keys keep their
    neighbour lists between steps (skin 1 A); CHGNet's own layers and bases do the rest.

    We deliberately do not call CHGNet's `predict_graph`: it takes forces and stresses with two
    autograd passes that each build a graph for a second derivative (`create_graph=True`, which
    training needs). Inference needs one first-derivative pass for both: half the time per pass, the
    same forces to float32 rounding. CHGNet's per-cell host converter would be a quarter of every
    48-atom MD step. (Measurements: docs/log/performance.md.)
    """

    GPA_PER_EV_A3 = 160.21766208  # CHGNet's own stress conversion, kept so stresses match its calculator

    def __init__(self, potential: LoadedPotential, max_atoms: int, skin: float = 1.0, memory: DeviceMemory | None = None):
        self.model = potential.torch_model()
        self.model.eval()
        self.device = potential.device
        converter = self.model.graph_converter
        self.bond_cutoff = float(converter.bond_graph_cutoff)
        self.neighbours = SkinNeighbours(float(converter.atom_graph_cutoff), skin)
        self.max_atoms = max_atoms
        self._setup_budget(self.device, memory)

    def evaluate_batch(self, batch: CellBatch) -> BatchResult:
        model = self.model
        counts, lattices, atom_cell, frac, edges, shifts = self._listed(batch)
        lengths = edge_vectors(frac, edges, shifts, lattices[atom_cell[edges[0]]]).norm(dim=1)
        n_atoms = int(atom_cell.shape[0])
        graph = build_graph(edges, shifts, lengths, n_atoms, self.bond_cutoff)
        isolated = graph.isolated_atoms(n_atoms)
        if isolated:
            cutoff = self.neighbours.cutoff
            raise ValueError(f"{isolated} atom(s) without a neighbour within {cutoff} A (CHGNet refuses them)")
        self._start_pass()
        batched, positions, strains = model_inputs(model, graph, batch.numbers.to(lattices.device), frac, lattices, atom_cell)
        prediction = model._compute(batched, compute_force=False, compute_stress=False)
        atoms = counts.to(prediction["e"].dtype)
        total = prediction["e"] * atoms if model.is_intensive else prediction["e"]
        position_grad, strain_grad = torch.autograd.grad(total.sum(), [positions, strains])
        self._end_pass(n_atoms, 2 * graph.bonds)
        with torch.no_grad():  # the elemental reference energies, as CHGNet.forward adds them
            energy = prediction["e"].detach() + self._reference(batch.numbers.to(lattices.device), atom_cell, counts)
            energies = energy * atoms if model.is_intensive else energy
        out = batch.positions.device
        # GPa as CHGNet reports it, then eV/A^3 as its ASE calculator converts (units.GPa)
        stresses = strain_grad.double() / batched.volumes.double()[:, None, None] * self.GPA_PER_EV_A3 * ase_units.GPa
        return BatchResult(energies.to(out, torch.float64), (-position_grad).to(out, torch.float64), stresses.to(out))

    def _reference(self, numbers: torch.Tensor, atom_cell: torch.Tensor, counts: torch.Tensor) -> torch.Tensor | float:
        """CHGNet's composition model (fitted elemental energies), per atom when the model is intensive."""
        composition_model = self.model.composition_model
        if composition_model is None:
            return 0.0
        features = torch.zeros(len(counts), composition_model.max_num_elements, device=numbers.device)
        features.index_put_((atom_cell, numbers - 1), torch.ones_like(numbers, dtype=features.dtype), accumulate=True)
        if composition_model.is_intensive:
            features = features / counts[:, None]
        return composition_model._get_energy(features.float())


def default_max_atoms(device: str) -> int:
    """Atoms per forward pass to start with. On a CPU the cost per atom grows once the batch's tensors
    leave the caches, so a modest batch is fastest; on a GPU this is only the first pass's size, after
    which md.memory sizes the passes from the free memory."""
    return 4096 if device == "cuda" else 96


def make_evaluator(potential: LoadedPotential, batched: bool = True, max_atoms: int | None = None) -> BatchEvaluator:
    """The batched evaluator for matgl, DIEP, SevenNet and CHGNet models, with D3 batched on top when the
    potential has it; the ASE loop for everything else (or when asked), whose calculator then includes D3
    itself."""
    limit = max_atoms or default_max_atoms(potential.device)
    inner: BatchEvaluator
    family = potential.base_name.partition(":")[0]
    if batched and family in ("matgl", "diep"):  # DIEP is a matgl-style PES model on the same graph format
        inner = MatglEvaluator(potential, limit)
    elif batched and family == "sevennet":
        from amorph.md.sevennet_batch import SevenNetEvaluator

        inner = SevenNetEvaluator(potential, limit)
    elif batched and potential.base_name == "chgnet":
        inner = ChgnetEvaluator(potential, limit)
    else:
        return AseEvaluator(potential)
    if potential.dispersion:
        from amorph.md.dispersion import DispersionEvaluator

        return DispersionEvaluator(inner)
    return inner
