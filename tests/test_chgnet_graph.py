"""CHGNet's crystal graph built for a whole batch (md.chgnet_graph) is CHGNet's own graph: the same
bonds and the same angle rows as its converter gives, and the same numbers through the model."""

from __future__ import annotations

from collections import Counter

import numpy as np
import pytest
import torch
from ase import Atoms
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.matching.database import known_polymorphs
from amorph.md.batched_relax import relax_many
from amorph.md.chgnet_graph import build_graph
from amorph.md.evaluators import CellBatch, ChgnetEvaluator, new_keys
from amorph.md.neighbours import periodic_edges
from amorph.md.potentials import load_potential


@pytest.fixture(scope="module")
def chgnet():
    return load_potential("chgnet", "cpu")


def _small_cells() -> list[Atoms]:
    """Sheared, rattled TiO2 cells smaller than the 6 A cutoff (atoms bonded to their own images),
    one of them thin enough along c that an atom meets its own image within the 3 A bond cutoff."""
    rutile, anatase = (p.structure.get_primitive_structure() for p in known_polymorphs("TiO2")[:2])
    cells = [AseAtomsAdaptor().get_atoms(s) for s in (rutile, anatase, rutile * (1, 1, 2))]
    rng = np.random.default_rng(7)
    for seed, atoms in enumerate(cells):
        atoms.rattle(0.1, seed=seed)
        atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.05 * rng.normal(size=(3, 3))), scale_atoms=True)
        atoms.wrap()
    assert cells[0].cell.lengths()[2] < 3.0  # rutile's c: Ti-Ti and O-O bonds to their own images
    return cells


def _key(i: int, j: int, image) -> tuple:
    return (int(i), int(j), *(int(round(float(x))) for x in image))


def _undirected(key: tuple) -> tuple:
    i, j, *n = key
    reverse = (j, i, *(-x for x in n))
    return min(key, reverse)


def _ours(atoms: Atoms, cutoff: float, bond_cutoff: float) -> tuple[Counter, Counter]:
    batch = CellBatch.from_atoms([atoms])
    frac = torch.linalg.solve(batch.cells[0].T, batch.positions.T).T
    edges, shifts = periodic_edges(frac, batch.cells, batch.counts, cutoff)
    lengths = ((frac[edges[1]] + shifts - frac[edges[0]]) @ batch.cells[0]).norm(dim=1)
    graph = build_graph(edges, shifts, lengths, len(atoms), bond_cutoff)
    directed = [_key(i, j, n) for (i, j), n in zip(graph.atom_graph().tolist(), graph.directed_images().tolist())]
    bonds = Counter(_undirected(k) for k in directed)
    angles = Counter((directed[a][0], directed[a], directed[b]) for a, b in graph.angle_edges.tolist())
    return bonds, angles


def _chgnets(atoms: Atoms, converter) -> tuple[Counter, Counter]:
    graph = converter(AseAtomsAdaptor.get_structure(atoms))
    directed = [_key(i, j, n) for (i, j), n in zip(graph.atom_graph.tolist(), graph.neighbor_image.tolist())]
    bonds = Counter(_undirected(k) for k in directed)
    angles = Counter((c, directed[d1], directed[d2]) for c, _u1, d1, _u2, d2 in graph.bond_graph.tolist())
    return bonds, angles


def test_graph_has_chgnets_bonds_and_angles(chgnet):
    converter = chgnet.model.graph_converter
    for atoms in _small_cells():
        bonds, angles = _ours(atoms, converter.atom_graph_cutoff, converter.bond_graph_cutoff)
        their_bonds, their_angles = _chgnets(atoms, converter)
        assert bonds == their_bonds  # every undirected bond, each as two directed edges
        assert set(bonds.values()) == {2}
        assert angles == their_angles and len(angles) > 0


def test_evaluator_reusing_neighbour_lists_agrees_with_fresh_lists(chgnet):
    """Cells that keep their lists between steps (keys) give what a fresh listing gives after moves
    and strains within the skin, and after a move that forces a new list."""
    cells = _small_cells()
    evaluator, fresh = ChgnetEvaluator(chgnet, max_atoms=100), ChgnetEvaluator(chgnet, max_atoms=100)
    keys = new_keys(len(cells))
    evaluator.evaluate(cells, keys)
    rng = np.random.default_rng(1)
    for step in (0.05, 0.2, 0.9):  # the last one moves atoms beyond what a 1 A skin covers
        for atoms in cells:
            atoms.positions += rng.normal(0, step, atoms.positions.shape)
            atoms.set_cell(atoms.cell.array @ (np.eye(3) + 0.01 * rng.normal(size=(3, 3))), scale_atoms=True)
        for kept, new in zip(evaluator.evaluate(cells, keys), fresh.evaluate(cells)):
            # float32 sums over the edges in another order: ~1e-6 relative, so the forces of a
            # squeezed cell (the 0.9 A moves give ~100 eV/A) agree to their size, not to 1e-4 eV/A;
            # a stale list that misses a neighbour well inside the cutoff shows far above this
            assert kept.energy == pytest.approx(new.energy, abs=1e-4)
            np.testing.assert_allclose(kept.forces, new.forces, rtol=1e-5, atol=1e-4)
            np.testing.assert_allclose(kept.stress, new.stress, rtol=1e-4, atol=1e-6)
    assert evaluator.neighbours.rebuilt > len(cells)


def test_isolated_atom_fails_its_own_cell_only(chgnet):
    """CHGNet refuses an atom with no neighbour within 6 A; in a batched relaxation only that cell ends,
    with the reason, and the others relax."""
    lonely = Atoms("TiO", positions=[[0, 0, 0], [7, 7, 7]], cell=[14, 14, 14], pbc=True)
    evaluator = ChgnetEvaluator(chgnet, max_atoms=100)
    with pytest.raises(ValueError, match="without a neighbour"):
        evaluator.evaluate([lonely])
    results = relax_many([_small_cells()[0], lonely], evaluator, 0.05, 5)
    assert results[0].error == "" and results[0].steps > 0
    assert "without a neighbour" in results[1].error
