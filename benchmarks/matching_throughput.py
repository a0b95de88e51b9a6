"""How long does naming N relaxed products take? (issue: matching must not dominate run time)

Makes N synthetic TiO2 "products" the way a run sees them: 80% are known polymorphs in small
supercells, strained up to 2% and rattled by 0.03 A; 20% are distinct random cells of 6-12 atoms
(stand-ins for the many one-off unknowns). Times the space-group ladder and the identification
step (bucketing, fingerprint-gated clustering, matching, naming of unknowns) separately.

    python benchmarks/matching_throughput.py            # 10,000 products
    python benchmarks/matching_throughput.py --small    # 1,000 products
    python benchmarks/matching_throughput.py --n 300 --compare-fit
        # also names them as before reduce-once (every StructureMatcher.fit reduces both structures
        # itself), side by side in one run: labels must be identical; fits counted and timed both ways
    python benchmarks/matching_throughput.py --layers RUN [RUN ...]
        # names finished runs' valid products with and without the layer check (matching.layers),
        # interleaved in one process, best of 2: what naming layered products by their layers costs
"""

from __future__ import annotations

import argparse
import time
from collections import Counter
from contextlib import contextmanager
from pathlib import Path

import numpy as np
from pymatgen.analysis.structure_matcher import StructureMatcher
from pymatgen.core import Lattice, Structure

import amorph.matching.identify as identify_module
from amorph.matching.database import known_polymorphs
from amorph.matching.identify import Product, identify
from amorph.matching.symmetry import find_symmetry
from amorph.results.provenance import measured_on
from amorph.threads import one_blas_thread


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


class _TimedMatcher:
    """The run's matcher, counting and timing its fit calls; plain=True ignores skip_structure_reduction."""

    def __init__(self, matcher: StructureMatcher, plain: bool):
        self.matcher, self.plain, self.fits, self.fit_s, self.reduce_s = matcher, plain, 0, 0.0, 0.0

    def fit(self, struct1, struct2, skip_structure_reduction: bool = False) -> bool:
        started = time.perf_counter()
        result = self.matcher.fit(struct1, struct2, skip_structure_reduction=skip_structure_reduction and not self.plain)
        self.fit_s += time.perf_counter() - started
        self.fits += 1
        return result

    def __getattr__(self, name):  # get_rms_dist, and the private methods reduced_for_matching calls
        return getattr(self.matcher, name)


@contextmanager
def _matching(plain: bool):
    """identify() with a timed matcher; plain=True: as before reduce-once (no reduction up front, every
    fit reduces both structures, i.e. fit(leader.structure, product.structure) and fit(pm.structure, ...))."""
    saved_make, saved_reduce = identify_module.make_matcher, identify_module.reduced_for_matching
    timed = _TimedMatcher(saved_make(), plain)
    identify_module.make_matcher = lambda: timed

    def timed_reduce(matcher, structure):
        started = time.perf_counter()
        reduced = saved_reduce(matcher, structure)
        timed.reduce_s += time.perf_counter() - started
        return reduced

    identify_module.reduced_for_matching = (lambda matcher, structure: structure) if plain else timed_reduce
    StructureMatcher._get_reduced_istructure.cache_clear()  # neither way starts with the other's reductions
    try:
        yield timed
    finally:
        identify_module.make_matcher, identify_module.reduced_for_matching = saved_make, saved_reduce


def compare_fit(products: list[Product]) -> None:
    """Name the products as before (plain fit) and now (reduce once, skip reduction), and compare."""
    identify(products[:20], known_polymorphs("TiO2"))  # warm up (database, lazy imports), not timed
    runs = {}
    for way, plain in (("plain fit", True), ("reduce once", False)):
        with _matching(plain) as timed:
            started = time.perf_counter()
            labels = identify(products, known_polymorphs("TiO2"))
            runs[way] = (labels, time.perf_counter() - started, timed.fits, timed.fit_s, timed.reduce_s)
    for way, (_labels, seconds, fits, fit_s, reduce_s) in runs.items():
        per_fit = 1e3 * fit_s / max(fits, 1)
        print(
            f"{way:>12}: identification {seconds:.2f} s; {fits} fits, {fit_s:.2f} s in fit ({per_fit:.1f} ms/fit),"
            f" {reduce_s:.2f} s reducing up front"
        )
    (old, t_old, _, f_old, r_old), (new, t_new, _, f_new, r_new) = runs.values()
    differ = [i for i in old if old[i] != new[i]]
    print(f"ratio old/new: identification {t_old / t_new:.2f}x; fit + reduction {(f_old + r_old) / (f_new + r_new):.2f}x")
    print(f"labels identical: {not differ and old.keys() == new.keys()} ({len(differ)} of {len(old)} differ)")


def compare_layers(runs: list[Path]) -> None:
    """Seconds to name each run's valid products with the layer check and without it, side by side."""
    from amorph.matching.layers import LayerFamilies
    from amorph.matching.polymorph import Polymorph
    from amorph.results import rundir as files
    from amorph.sampling import product_of

    with_layers = LayerFamilies.named_by_layers
    for run in runs:
        out = files.RunDir(run)
        products = [product_of(a) for a in out.read_atoms(files.SUBCELLS_RELAXED) if a.info["valid"]]
        references = [Polymorph.from_dict(d) for d in out.read_json(files.KNOWN_POLYMORPHS)["polymorphs"]]
        best = {"with": float("inf"), "without": float("inf")}
        named = {}
        try:
            for _ in range(2):
                for way in best:
                    LayerFamilies.named_by_layers = with_layers if way == "with" else (lambda self, structure, candidates: None)
                    started = time.perf_counter()
                    named[way] = identify(products, references)
                    best[way] = min(best[way], time.perf_counter() - started)
        finally:
            LayerFamilies.named_by_layers = with_layers
        variants = sum(label.stacking_variant for label in named["with"].values())
        print(f"{run.name}: {len(products)} products, {best['without']:.2f} s without the layer check, {best['with']:.2f} s with it "
              f"({best['with'] / best['without']:.2f}x); {variants} named by their layers")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=10_000)
    parser.add_argument("--small", action="store_true", help="1,000 products")
    parser.add_argument("--compare-fit", action="store_true", help="only: plain fit vs reduce once, side by side")
    parser.add_argument("--layers", type=Path, nargs="+", metavar="RUN", help="only: finished runs named with and without the layer check")
    args = parser.parse_args()
    print(measured_on())
    one_blas_thread()  # as a run does (amorph.threads)
    if args.layers:
        compare_layers(args.layers)
        return
    n = 1_000 if args.small else args.n

    structures = synthetic_products(n)
    started = time.perf_counter()
    products = [Product(i, s, -9.0 + 1e-4 * i, find_symmetry(s)) for i, s in enumerate(structures)]
    t_symmetry = time.perf_counter() - started
    if args.compare_fit:
        print(f"products: {n}")
        compare_fit(products)
        return
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
