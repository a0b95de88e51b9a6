"""Energies, forces and stresses of many periodic cells in one call: the part of a potential that batches.

Every evaluator answers `evaluate(cells) -> list[Evaluation]` in ASE units (eV, eV/A, eV/A^3, ASE's
stress sign). `AseEvaluator` loops over any ASE calculator one cell at a time (EMT, or a potential
without a batched path); `MatglEvaluator` and `ChgnetEvaluator` put many cells in one graph batch
and run one forward/backward pass for all of them.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np
from ase import Atoms
from ase import units as ase_units

from md.potentials import LoadedPotential


@dataclass
class Evaluation:
    """One cell's energy (eV), forces (eV/A, shape (n, 3)) and stress (eV/A^3, 3x3, ASE sign)."""

    energy: float
    forces: np.ndarray
    stress: np.ndarray


class BatchEvaluator(Protocol):
    """Evaluates a list of cells; `max_atoms` is how many atoms one forward pass should hold."""

    max_atoms: int

    def evaluate(self, cells: Sequence[Atoms]) -> list[Evaluation]: ...


class AseEvaluator:
    """Any ASE calculator, one cell at a time (the reference path the batched ones must agree with)."""

    def __init__(self, potential: LoadedPotential):
        self.calculator = potential.make_calculator()
        self.max_atoms = 1  # one cell per call

    def evaluate(self, cells: Sequence[Atoms]) -> list[Evaluation]:
        out = []
        for cell in cells:
            atoms = cell.copy()
            atoms.calc = self.calculator
            stress = atoms.get_stress(voigt=False)
            out.append(Evaluation(float(atoms.get_potential_energy()), atoms.get_forces().copy(), stress.copy()))
        return out


class MatglEvaluator:
    """A matgl PES model on a PyTorch Geometric batch of graphs: one forward and one backward pass."""

    def __init__(self, potential: LoadedPotential, max_atoms: int):
        import torch
        from matgl.ext.ase import Atoms2Graph

        self.potential = potential.model
        self.device = torch.device(potential.device)
        model = self.potential.model  # type: ignore[union-attr]
        self.converter = Atoms2Graph(model.element_types, model.cutoff)
        self.max_atoms = max_atoms

    def evaluate(self, cells: Sequence[Atoms]) -> list[Evaluation]:
        import torch
        from torch_geometric.data import Batch

        graphs, lattices, states = [], [], []
        for cell in cells:
            graph, lattice, state = self.converter.get_graph(cell)
            graphs.append(graph)
            lattices.append(torch.as_tensor(lattice).reshape(3, 3))
            states.append(torch.as_tensor(np.asarray(state)).reshape(1, -1))
        batch = Batch.from_data_list(graphs).to(self.device)
        lattice = torch.stack(lattices).to(self.device)
        state = torch.cat(states).to(self.device)
        energies, forces, stresses = self.potential(batch, lattice, state)[:3]  # type: ignore[misc,operator]
        energies = energies.detach().cpu().numpy().reshape(-1)
        forces = forces.detach().cpu().numpy()
        # matgl: stresses (3B, 3) in GPa; ASE wants eV/A^3 (PESCalculator multiplies by units.GPa too)
        stresses = stresses.detach().cpu().numpy().reshape(len(cells), 3, 3) * ase_units.GPa
        out, start = [], 0
        for k, cell in enumerate(cells):
            n = len(cell)
            out.append(Evaluation(float(energies[k]), forces[start : start + n], stresses[k]))
            start += n
        return out


class ChgnetEvaluator:
    """CHGNet's own batched prediction (`predict_graph` on a list of crystal graphs)."""

    def __init__(self, potential: LoadedPotential, max_atoms: int):
        self.model = potential.model
        self.device = potential.device
        self.max_atoms = max_atoms

    def evaluate(self, cells: Sequence[Atoms]) -> list[Evaluation]:
        from pymatgen.io.ase import AseAtomsAdaptor

        model = self.model
        graphs = [model.graph_converter(AseAtomsAdaptor.get_structure(cell)).to(self.device) for cell in cells]  # type: ignore[union-attr]
        predictions = model.predict_graph(graphs, task="efs", batch_size=len(graphs))  # type: ignore[union-attr]
        if isinstance(predictions, dict):
            predictions = [predictions]
        out = []
        for cell, p in zip(cells, predictions):
            n = len(cell)
            energy = float(p["e"]) * (n if model.is_intensive else 1)  # type: ignore[union-attr]
            # CHGNetCalculator's conversion: GPa -> eV/A^3 with units.GPa, same sign
            out.append(Evaluation(energy, np.asarray(p["f"]), np.asarray(p["s"]) * ase_units.GPa))
        return out


def default_max_atoms(device: str) -> int:
    """Atoms per forward pass. On a CPU the cost per atom grows once the batch's tensors leave the
    caches, so a modest batch is fastest; on a GPU many more atoms fit before the device saturates."""
    return 4096 if device == "cuda" else 96


def make_evaluator(potential: LoadedPotential, batched: bool = True, max_atoms: int | None = None) -> BatchEvaluator:
    """The batched evaluator for matgl and CHGNet models; the ASE loop for everything else (or when asked)."""
    limit = max_atoms or default_max_atoms(potential.device)
    if batched and potential.name.startswith("matgl:"):
        return MatglEvaluator(potential, limit)
    if batched and potential.name == "chgnet":
        return ChgnetEvaluator(potential, limit)
    return AseEvaluator(potential)
