"""How long does naming N relaxed products take? (issue: matching must not dominate run time)

Makes N synthetic TiO2 "products" the way a run sees them: 80% are known polymorphs in small
supercells, strained up to 2% and rattled by 0.03 A; 20% are distinct random cells of 6-12 atoms
(stand-ins for the many one-off unknowns). Times the space-group ladder and the identification
step (bucketing, fingerprint-gated clustering, matching, naming of unknowns) separately.

    python benchmarks/matching_throughput.py            # 10,000 products
    python benchmarks/matching_throughput.py --small    # 1,000 products
"""

from __future__ import annotations

import amorph  # noqa: F401, I001  (first, before numpy: one BLAS thread, see amorph/__init__)
import argparse
import time
from collections import Counter

import numpy as np
from pymatgen.core import Lattice, Structure

from matching.database import known_polymorphs
from matching.identify import Product, identify
from matching.symmetry import find_symmetry


def synthetic_products(n: int, seed: int = 0) -> list[Structure]:
    rng = np.random.default_rng(seed)
    polymorphs = [p.structure.get_primitive_structure() for p in known_polymorphs("TiO2") if len(p.structure) <= 24]
    out = []
    for _ in range(n):
        if rng.random() < 0.8:
            s = polymorphs[rng.integers(len(polymorphs))].copy()
            if len(s) <= 6 and rng.random() < 0.5:
                s.make_supercell([1 + int(rng.integers(2)), 1, 1])
            s.apply_strain(rng.uniform(-0.02, 0.02, 3))
            s.perturb(0.03)
        else:
            units = int(rng.integers(2, 5))
            species = ["Ti"] * units + ["O"] * (2 * units)
            s = Structure(Lattice.orthorhombic(*rng.uniform(3.5, 6.5, 3)), species, rng.random((3 * units, 3)))
        out.append(s)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--small", action="store_true", help="1,000 products")
    args = parser.parse_args()
    n = 1_000 if args.small else args.n

    structures = synthetic_products(n)
    started = time.perf_counter()
    products = [Product(i, s, -9.0 + 1e-4 * i, find_symmetry(s)) for i, s in enumerate(structures)]
    t_symmetry = time.perf_counter() - started
    started = time.perf_counter()
    labels = identify(products, known_polymorphs("TiO2"))
    t_identify = time.perf_counter() - started

    counts = Counter(label.label if label.known else "unknown" for label in labels.values())
    distinct_unknowns = len({label.label for label in labels.values() if not label.known})
    print(f"products: {n}")
    print(f"space groups: {t_symmetry:.1f} s ({n / t_symmetry:.0f} products/s)")
    print(f"identification: {t_identify:.1f} s ({n / t_identify:.0f} products/s)")
    print(f"named: {dict(counts.most_common())}; distinct unknowns: {distinct_unknowns}")
    print(f"total: {t_symmetry + t_identify:.1f} s for {n} products")


if __name__ == "__main__":
    main()
