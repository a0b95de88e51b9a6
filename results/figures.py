"""Pictures of a finished run (PNG, in the run folder's figures/): what a scientist looks at first.

* melt_quench.png: target and actual temperature, and potential energy, against time;
* rdf.png: partial radial distribution functions of the amorphous cell beside those of the
  predicted and the ground-state polymorph;
* shares.png: each product's share of the valid subcells with its 95% interval;
* energy_vs_share.png: each product's lowest energy per atom against its share (the Ostwald
  picture: the frequent product need not be the lowest one);
* products/NAME.png: a rendered image of each product's structure (for report.html).

matplotlib with the Agg backend: no display is needed, so it runs on a cluster node.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from ase import Atoms
    from matplotlib.figure import Figure

MELT_QUENCH_PNG = "melt_quench.png"
RDF_PNG = "rdf.png"
SHARES_PNG = "shares.png"
ENERGY_SHARE_PNG = "energy_vs_share.png"
SCREEN_PNG = "screen.png"
MOST_BARS = 12  # products shown in the share chart: the known ones first, then the most frequent others
RDF_MAX = 6.0  # A
RDF_BIN = 0.02  # A
RDF_SMEAR = 0.05  # A: Gaussian width applied to every curve alike, so a crystal's shells show as peaks
DPI = 110
# One colour per role, in every figure (and report.html's legend text)
PREDICTED = "tab:orange"  # the polymorph the run names first
KNOWN = "tab:blue"  # another known polymorph
UNKNOWN = "0.6"  # a product that matches no known polymorph
AMORPHOUS = "k"
FAILED = "tab:red"
OTHERS = ("tab:green", "tab:purple", "tab:brown", "tab:olive")  # further curves (crystals in rdf.png)
# energy_vs_share.png: the scale is set by the products that compete for the answer: every known
# polymorph, and any product within this many meV/atom of the lowest; the rest are marked off scale
COMPETING_WINDOW_MEV = 100.0


def _figure(width: float, height: float) -> Figure:
    """A figure not tied to pyplot's global state (safe in worker threads, never shown)."""
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _save(fig: Figure, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    return path


def melt_quench_figure(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """Temperature (target and actual) and potential energy per atom against time, one line per replica."""
    fig = _figure(7.0, 4.6)
    temp_ax, energy_ax = fig.subplots(2, 1, sharex=True)
    replicas = sorted({int(r["replica"]) for r in rows})
    first = [r for r in rows if int(r["replica"]) == replicas[0]]
    temp_ax.plot(np.array([float(r["time_fs"]) for r in first]) / 1000.0, [float(r["target_temperature"]) for r in first],
                 "k--", lw=1.2, label="target", zorder=3)
    for replica in replicas:
        mine = [r for r in rows if int(r["replica"]) == replica]
        t = np.array([float(r["time_fs"]) for r in mine]) / 1000.0
        label = f"replica {replica}" if len(replicas) > 1 else "reached"
        temp_ax.plot(t, [float(r["temperature"]) for r in mine], lw=0.8, alpha=0.8, label=label)
        energy_ax.plot(t, [float(r["potential_energy"]) for r in mine], lw=0.8)
    # a start far hotter than the melt (an unrelaxed packing, docs/method.md) would flatten the
    # schedule: keep the scale on it and say in the title how hot the run went, off the curves
    hottest = max(float(r["temperature"]) for r in rows)
    ceiling = 2.0 * max(float(r["target_temperature"]) for r in rows)
    title = "Melt-quench"
    if hottest > ceiling:
        temp_ax.set_ylim(0, ceiling)
        title += f" (off scale: up to {hottest:.0f} K)"
    temp_ax.set_ylabel("temperature (K)")
    temp_ax.legend(loc="upper right", fontsize="small", ncols=2 if len(replicas) > 2 else 1)
    energy_ax.set_ylabel("potential energy (eV/atom)")
    energy_ax.set_xlabel("time (ps)")
    temp_ax.set_title(title)
    return _save(fig, path)


def partial_rdf(atoms: Atoms, a: str, b: str) -> tuple[np.ndarray, np.ndarray]:
    """g_ab(r) for a figure: finer bins and less smearing than the similarity takes (matching.local_structure)."""
    from amorph.matching.local_structure import partial_rdf as rdf

    return rdf(atoms, a, b, RDF_MAX, RDF_BIN, RDF_SMEAR)


def rdf_figure(amorphous: Sequence[Atoms], crystals: dict[str, Atoms], path: Path) -> Path:
    """One panel per element pair: the amorphous cell(s) (averaged over replicas) and each crystal; a last
    panel with the mean coordination numbers of each, over the similarity's bond criterion."""
    from amorph.matching.local_structure import BOND_FACTOR, bond_length, local_structure

    elements = sorted({s for atoms in amorphous for s in atoms.get_chemical_symbols()})
    pairs = [(a, b) for k, a in enumerate(elements) for b in elements[k:]]
    panels = len(pairs) + 1
    columns = min(3, panels)
    rows = math.ceil(panels / columns)
    fig = _figure(3.6 * columns, 2.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, columns, squeeze=False)).ravel()
    # the amorphous solid in black, the crystals in colours that mean no role elsewhere (not orange: predicted)
    others = iter(OTHERS * len(crystals))
    colours = [AMORPHOUS] + [PREDICTED if label.startswith("predicted") else next(others) for label in crystals]
    for ax, (a, b) in zip(axes, pairs):
        curves = [partial_rdf(cell, a, b) for cell in amorphous]
        r, g = curves[0][0], np.mean([curve[1] for curve in curves], axis=0)
        ax.plot(r, g, colours[0], lw=1.4, label="amorphous")
        for colour, (label, crystal) in zip(colours[1:], crystals.items()):
            ax.plot(r, partial_rdf(crystal, a, b)[1], color=colour, lw=0.9, alpha=0.85, label=label)
        ax.axvline(bond_length(a, b), color="0.6", lw=0.6, ls=":")
        ax.set_title(f"{a}-{b}")
        ax.set_xlabel("r (Å)")
        ax.set_ylabel("g(r)")
        ax.set_xlim(0, RDF_MAX)
    species = tuple(elements)
    ordered = [f"{a}-{b}" for a in elements for b in elements]
    shown = {"amorphous": [local_structure(cell, species).mean_coordination for cell in amorphous]}
    shown |= {label: [local_structure(crystal, species).mean_coordination] for label, crystal in crystals.items()}
    ax = axes[len(pairs)]
    width = 0.8 / len(shown)
    for k, (colour, (label, found)) in enumerate(zip(colours, shown.items())):
        values = [np.mean([f.get(pair, 0.0) for f in found]) for pair in ordered]
        ax.bar(np.arange(len(ordered)) + (k - (len(shown) - 1) / 2) * width, values, width, color=colour, label=label)
    ax.set_xticks(np.arange(len(ordered)), ordered, fontsize="small", rotation=30)
    ax.set_ylabel("neighbours b of each a")
    ax.set_title(f"mean coordination a-b\n(bond < {BOND_FACTOR:g}× covalent radii)", fontsize="small")
    for ax in axes[panels:]:
        ax.set_visible(False)
    handles, labels = axes[len(pairs)].get_legend_handles_labels()
    if len(axes) > panels:  # an empty slot: the legend there, clear of every curve and bar
        axes[panels].set_visible(True)
        axes[panels].set_axis_off()
        axes[panels].legend(handles, labels, fontsize="small", loc="upper left")
    else:
        axes[len(pairs)].legend(fontsize="small", loc="upper left")
    return _save(fig, path)


def chosen_products(polymorphs: Sequence[dict[str, Any]], most: int = MOST_BARS) -> list[dict[str, Any]]:
    """The rows worth a bar (or a picture): every known polymorph found, then the most frequent others."""
    known = [p for p in polymorphs if p["known"] and p["count"] > 0]
    others = sorted((p for p in polymorphs if not p["known"]), key=lambda p: -p["count"])
    return (known + others)[:most]


def shares_figure(polymorphs: Sequence[dict[str, Any]], predicted: str | None, path: Path) -> Path:
    """Bar chart of shares with 95% intervals; the predicted polymorph in a second colour."""
    rows = chosen_products(polymorphs)
    fig = _figure(max(4.5, 0.6 * len(rows) + 2), 3.6)
    ax = fig.subplots()
    x = np.arange(len(rows))
    share = np.array([100 * p["share"] for p in rows])
    low = np.array([100 * p.get("share_ci_low", p["share"]) for p in rows])
    high = np.array([100 * p.get("share_ci_high", p["share"]) for p in rows])
    colours = [_role_colour(p, predicted) for p in rows]
    ax.bar(x, share, color=colours)
    ax.errorbar(x, share, yerr=[share - low, high - share], fmt="none", ecolor="k", capsize=3, lw=1)
    ax.set_xticks(x, [p["name"] for p in rows], rotation=40, ha="right")
    ax.set_ylabel("share of valid subcells (%)")
    ax.set_title("Products, with 95% intervals")
    _role_legend(ax, {_role(p, predicted) for p in rows}, predicted, marker="s")
    return _save(fig, path)


def _role(p: dict[str, Any], predicted: str | None) -> str:
    return "predicted" if p["name"] == predicted else ("known" if p["known"] else "unknown")


def _role_colour(p: dict[str, Any], predicted: str | None) -> str:
    return {"predicted": PREDICTED, "known": KNOWN, "unknown": UNKNOWN}[_role(p, predicted)]


def _role_legend(ax: Any, roles: set[str], predicted: str | None, marker: str = "o", extra: Sequence[Any] = ()) -> None:
    """A legend entry for each role present (predicted, known, unknown), and any extra handles."""
    from matplotlib.lines import Line2D

    names = {"predicted": f"named first ({predicted})", "known": "known polymorph", "unknown": "no known polymorph"}
    colours = {"predicted": PREDICTED, "known": KNOWN, "unknown": UNKNOWN}
    handles = [Line2D([], [], ls="", marker=marker, color=colours[r], label=names[r]) for r in ("predicted", "known", "unknown") if r in roles]
    ax.legend(handles=[*handles, *extra], fontsize="small", loc="best")


def energy_share_figure(polymorphs: Sequence[dict[str, Any]], predicted: str | None, path: Path) -> Path:
    """energy_vs_share.png (energy_share_plot)."""
    return _save(energy_share_plot(polymorphs, predicted), path)


def energy_share_plot(polymorphs: Sequence[dict[str, Any]], predicted: str | None) -> Figure:
    """Lowest energy per atom (meV/atom above the lowest product) against share. The scale is set by the
    products that compete for the answer (every known polymorph, and any product within
    COMPETING_WINDOW_MEV of the lowest); products above it are marked at the top, off scale, counted."""
    from matplotlib.lines import Line2D

    rows = [p for p in polymorphs if p["count"] > 0 and p.get("lowest_energy_per_atom") is not None]
    fig = _figure(6.0, 4.2)
    ax = fig.subplots()
    extra = []
    if rows:
        lowest = min(p["lowest_energy_per_atom"] for p in rows)

        def above(p: dict[str, Any]) -> float:
            return 1000 * (p["lowest_energy_per_atom"] - lowest)

        competing = [p for p in rows if p["known"] or above(p) <= COMPETING_WINDOW_MEV]
        top = max(10.0, 1.25 * max(above(p) for p in competing))
        off = [p for p in rows if above(p) > top]
        for p in rows:
            if above(p) > top:
                continue
            x, y = 100 * p["share"], above(p)
            ax.scatter([x], [y], s=46 if p["known"] else 20, zorder=3, color=_role_colour(p, predicted))
            if p["known"]:
                ax.annotate(p["name"], (x, y), textcoords="offset points", xytext=(5, 5), fontsize="small")
        if off:
            ax.scatter([100 * p["share"] for p in off], [top] * len(off), marker="^", s=20, color=UNKNOWN, clip_on=False, zorder=3)
            extra.append(Line2D([], [], ls="", marker="^", color=UNKNOWN, label=f"{len(off)} more above {top:.0f} meV/atom (off scale)"))
        ax.set_ylim(-0.06 * top, top)
        ax.margins(x=0.12)
        _role_legend(ax, {_role(p, predicted) for p in rows if above(p) <= top}, predicted, extra=extra)
    ax.set_xlabel("share of valid subcells (%)")
    ax.set_ylabel("lowest energy (meV/atom above the lowest product)")
    ax.set_title("Energy against share")
    return fig


def structure_image(atoms: Atoms, path: Path) -> Path:
    """A still of one product's cell (ASE's matplotlib renderer, viewed slightly off-axis)."""
    from ase.visualize.plot import plot_atoms

    fig = _figure(2.6, 2.6)
    ax = fig.subplots()
    plot_atoms(atoms, ax, rotation="10x,-20y,0z", radii=0.5, show_unit_cell=2)
    ax.set_axis_off()
    return _save(fig, path)


def screen_figure(rows: Sequence[dict[str, Any]], path: Path) -> Path:
    """One row per formula: how far the predicted polymorph lies above the ground state (by energy
    under the same potential), labelled "predicted / ground state"; 0 where they are the same, orange
    where they differ (a metastable polymorph first: Ostwald's rule of stages), failures in red."""
    fig = _figure(7.0, 0.45 * len(rows) + 1.4)
    ax = fig.subplots()
    y = np.arange(len(rows))[::-1]
    for k, r in zip(y, rows):
        if r["status"] != "done":  # the error itself is in the table beside the figure
            ax.plot([0], [k], "x", color=FAILED)
            ax.text(0, k, "  failed (see the table)", va="center", color=FAILED, fontsize="small")
            continue
        above = r.get("predicted_above_ground_mev")
        value = float(above) if above is not None and not (isinstance(above, float) and math.isnan(above)) else 0.0
        ax.barh(k, value, color=PREDICTED, height=0.6)
        ax.plot([value], [k], "o", color=PREDICTED)
        note = " (no energy: not a known polymorph)" if above is None and r.get("predicted") else ""
        same = " (the ground state)" if r.get("predicted") and not r.get("differs") else ""
        ax.text(value, k, f"  {r.get('predicted') or 'none'} / {r.get('ground_state') or '?'}{same}{note}", va="center", fontsize="small")
    several = len({r.get("potential") for r in rows}) > 1
    ax.set_yticks(y, [r["formula"] + (f"\n{r.get('potential')}" if several else "") for r in rows])
    ax.axvline(0, color="k", lw=0.8)
    right = max([float(r["predicted_above_ground_mev"]) for r in rows if r.get("predicted_above_ground_mev") is not None] + [10.0])
    ax.set_xlim(-0.05 * right, 1.6 * right)
    ax.set_xlabel("predicted polymorph above the ground state (meV/atom)")
    ax.set_title("Screen: first to nucleate / ground state")
    return _save(fig, path)
