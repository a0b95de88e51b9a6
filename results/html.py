"""report.html: one self-contained page per run (and per screen) to open in any browser.

Everything is inside the one file, so it can be mailed or attached to a lab notebook: the pictures
(results.figures) as base64 PNGs, each product's CIF as a download link (a data: URL), the
settings, the prediction sentence and the tables. No script and no network access: the page
looks the same offline, years later.

Written with the standard library's html.escape rather than a template engine: the page is a few
tables and images, and one dependency fewer is one thing fewer to break.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterable, Sequence
from html import escape
from itertools import repeat
from pathlib import Path
from typing import TYPE_CHECKING, Any

from amorph.progress import ProgressSink
from amorph.results import figures
from amorph.results import rundir as files
from amorph.results.report import (
    SIMILARITY_HEADER,
    amorphous_limit_text,
    melt_quench_text,
    not_formed_text,
    prediction_line,
    share_of,
    share_text,
    shown_formula,
    similarity_lines,
    spacegroup_text,
    stacking_note,
    structure_only_text,
    unknown_description,
)
from amorph.results.rundir import RunDir
from amorph.settings import flat_settings

if TYPE_CHECKING:
    from amorph.run import Run

MOST_PRODUCT_IMAGES = 24  # products drawn in the gallery (figures.chosen_products, then by count); all CIFs are linked

CLOSEST_DRAWN = 2  # polymorphs drawn beside the amorphous solid in the RDF figure, closest first

STYLE = """
body { font-family: system-ui, sans-serif; margin: 2em auto; max-width: 72em; color: #222; padding: 0 1em; }
h1 { font-size: 1.5em; } h2 { font-size: 1.2em; margin-top: 2em; border-bottom: 1px solid #ccc; }
p.prediction { font-size: 1.15em; background: #eef5ff; padding: 0.6em 0.9em; border-left: 4px solid #3a78c2; }
table { border-collapse: collapse; margin: 0.5em 0; font-size: 0.92em; }
th, td { border: 1px solid #ccc; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
tr.off td { background: #fff1dc; font-weight: bold; } tr.unknown td { color: #666; }
tr.failed td { background: #fbe3e3; } tr.differs td { background: #fff1dc; }
img { max-width: 100%; } figure { display: inline-block; margin: 0.5em; vertical-align: top; }
figure.product { width: 15em; text-align: center; font-size: 0.85em; }
details { margin: 0.5em 0; } code { font-size: 0.9em; }
"""


def png_data_url(path: Path) -> str:
    return "data:image/png;base64," + base64.b64encode(path.read_bytes()).decode("ascii")


def file_link(path: Path, mime: str) -> str:
    """A link that downloads the file itself from inside the page."""
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<a download="{escape(path.name)}" href="data:{mime};base64,{data}">{escape(path.name)}</a>'


def table(header: Sequence[str], rows: Iterable[Sequence[Any]], classes: Iterable[str] | None = None) -> str:
    """An HTML table; numbers right-aligned, everything escaped."""
    head = "".join(f"<th>{escape(str(h))}</th>" for h in header)
    body = []
    for row, cls in zip(rows, classes or repeat("")):
        cells = "".join(
            f'<td class="num">{escape(str(v))}</td>' if isinstance(v, (int, float)) and not isinstance(v, bool) else f"<td>{escape(str(v))}</td>"
            for v in row
        )
        body.append(f'<tr class="{cls}">{cells}</tr>' if cls else f"<tr>{cells}</tr>")
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"


def page(title: str, sections: Sequence[str]) -> str:
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(sections) + "\n</body></html>\n"
    )


def image(path: Path, alt: str) -> str:
    return f'<figure><img src="{png_data_url(path)}" alt="{escape(alt)}"></figure>'


def page_title(report: dict[str, Any]) -> str:
    pred = report["prediction"]
    if pred.get("polymorph") is None:
        return f"amorph {shown_formula(report)}: no prediction"
    if pred.get("conclusive") is False:
        return f"amorph {shown_formula(report)}: inconclusive ({pred['polymorph']} leads)"
    return f"amorph {shown_formula(report)}: {pred['polymorph']} first"


SHOWN_UNKNOWNS = 8  # as the terminal: the commonest unknown products in the table, the rest folded away


def _products_table(report: dict[str, Any]) -> str:
    header = ["product", "space group", "count", "share [95% CI]", "lowest E (eV/atom)", "median E (eV/atom)"]

    def line(p: dict[str, Any]) -> list[Any]:
        name = (p["name"] if p["known"] else unknown_description(p)) + stacking_note(p)
        return [name, spacegroup_text(p), p["count"], share_text(p),
                round(p["lowest_energy_per_atom"], 4), round(p["median_energy_per_atom"], 4)]

    shown: list[dict[str, Any]] = []
    folded: list[dict[str, Any]] = []
    unknowns = 0
    for p in report["polymorphs"]:
        unknowns += not p["known"]
        (shown if p["known"] or unknowns <= SHOWN_UNKNOWNS else folded).append(p)
    html = table(header, [line(p) for p in shown], ["" if p["known"] else "unknown" for p in shown])
    if folded:
        members = sum(p["count"] for p in folded)
        html += (f"<details><summary>{len(folded)} more unknown products ({members} subcell{'s' if members != 1 else ''})</summary>"
                 + table(header, [line(p) for p in folded], ["unknown"] * len(folded)) + "</details>")
    return html


def _rules_table(report: dict[str, Any]) -> str:
    rows = []
    chosen = report["prediction"].get("rule")
    for rule, named in report.get("predictions", {}).items():
        label = rule + (" (this run's rule)" if rule == chosen else "")
        if named.get("polymorph") is None:
            rows.append([label, named.get("message", ""), "", "", "", "", ""])
            continue
        share = share_of(named)
        probability = f"{named['probability']:.2f}" + ("" if named["conclusive"] else " (inconclusive)") if "probability" in named else ""
        rows.append([label, named["polymorph"] + stacking_note(named), f"{named['spacegroup_symbol']} ({named['spacegroup_number']})", named["count"],
                     share_text(share), probability, named.get("runner_up", {}).get("polymorph", "")])
    return table(["rule", "names", "space group", "count", "share [95% CI]", "P(named)", "runner-up"], rows)


def _similarity_section(report: dict[str, Any]) -> str:
    """Every known polymorph against the amorphous solid, closest first, the subcells' count beside."""
    lines = similarity_lines(report)
    if not lines:
        return ""
    unreachable = ["unknown" if "unreachable" in line[7] else "" for line in lines]
    return ("<h2>How close the amorphous solid is to each polymorph</h2>"
            "<p>Similarity 1 means the same structure: the mean of five comparisons of each replica's relaxed amorphous cell "
            "with the polymorph relaxed under the same potential (density, partial RDFs, coordination, bond angles, SOAP), "
            "± its standard error over the replicas. A polymorph above the amorphous solid's energy cannot crystallize from it. "
            "A polymorph named on structure alone, which no subcell formed, is a hypothesis, not an observed crystallization.</p>"
            + table(SIMILARITY_HEADER, lines, unreachable) + f"<p>{escape(amorphous_limit_text(report))} · * ambient ground state</p>"
            + (f"<p><b>{escape(hypothesis)}.</b></p>" if (hypothesis := structure_only_text(report)) else ""))


def _melt_quench_section(report: dict[str, Any]) -> str:
    """The temperatures each replica's stages reached, a stage off its target highlighted."""
    mq = report.get("melt_quench")
    if not mq or not mq.get("stages"):
        return ""
    header = ["replica", "stage", "target (K)", "reached (K)", "spread (K)", "off by", "peak (K)"]
    rows = [[s["replica"], s["stage"], f"{s['target']:.0f}", f"{s['mean']:.0f}", f"{s['spread']:.0f}",
             f"{100 * s['deviation']:+.0f}%" + (" (over 10%)" if s["off_target"] else ""), f"{s['peak']:.0f}"] for s in mq["stages"]]
    starts = "; ".join(f"replica {r['replica']}: {r['packed_energy']:.3f} -> {r['relaxed_energy']:.3f} eV/atom in {r['steps']} steps"
                       for r in mq.get("start_relaxation", []))
    return (f"<h2>Melt-quench</h2><p>{escape(melt_quench_text(report))}</p>"
            + table(header, rows, ("off" if s["off_target"] else "" for s in mq["stages"]))
            + (f"<p>The packed cell relaxed (atoms only) before the MD: {escape(starts)}.</p>" if starts else ""))


def _gallery(report: dict[str, Any], out: RunDir, images: dict[str, Path]) -> str:
    cards = []
    by_name = {p["name"]: p for p in report["polymorphs"]}
    for name, png in images.items():
        p = by_name[name]
        cif = files.product_cif(out.file(files.PRODUCTS), name)
        label = (name if p["known"] else unknown_description(p)) + stacking_note(p)
        cards.append(
            f'<figure class="product"><img src="{png_data_url(png)}" alt="structure of {escape(name)}">'
            f"<figcaption>{escape(label)}<br>{escape(p['spacegroup_symbol'])} ({p['spacegroup_number']}), "
            f"{p['count']} subcell{'s' if p['count'] != 1 else ''}<br>{file_link(cif, 'chemical/x-cif')}</figcaption></figure>"
        )
    return "".join(cards)


def run_page(out: RunDir) -> Path:
    """Draw the run's figures (figures/) and write report.html; returns its path."""
    from ase import Atoms
    from ase.io import read
    from pymatgen.io.ase import AseAtomsAdaptor

    from amorph.matching.polymorph import Polymorph

    report, config = out.read_json(files.REPORT), out.read_json(files.CONFIG)
    folder = out.file(files.FIGURES)
    predicted = report["prediction"].get("polymorph")
    drawn: list[tuple[Path, str]] = []
    if out.has(files.MELT_QUENCH_LOG):
        drawn.append((figures.melt_quench_figure(out.read_rows(files.MELT_QUENCH_LOG), folder / figures.MELT_QUENCH_PNG),
                      "melt-quench: temperature and potential energy against time"))
    known = [Polymorph.from_dict(d) for d in out.read_json(files.KNOWN_POLYMORPHS)["polymorphs"]]
    crystals: dict[str, Atoms] = {}  # legend label -> structure; each polymorph drawn once
    shown: set[str] = set()
    for label, polymorph in [("predicted", next((p for p in known if p.name == predicted), None)),
                             ("ground state", next((p for p in known if p.ground_state), None))]:
        if polymorph is not None and polymorph.name not in shown:
            crystals[f"{label}: {polymorph.name}"] = Atoms(AseAtomsAdaptor().get_atoms(polymorph.structure))
            shown.add(polymorph.name)
    product_cif = out.file(files.PRODUCTS) / f"{predicted}.cif"
    if predicted is not None and predicted not in shown and product_cif.exists():  # no known polymorph: its product
        crystals[f"predicted: {predicted}"] = read(product_cif, index=0)  # type: ignore[assignment]
    amorphous = out.read_atoms(files.AMORPHOUS_XYZ)
    if report.get("similarity") and out.has(files.POLYMORPHS_RELAXED):  # the relaxed cells the similarity compared
        amorphous = out.read_atoms(files.AMORPHOUS_RELAXED)
        relaxed = {a.info["name"]: a for a in out.read_atoms(files.POLYMORPHS_RELAXED)}
        closest = [p["name"] for p in report["similarity"]["polymorphs"]][:CLOSEST_DRAWN]
        crystals = {f"{'closest' if k == 0 else 'next'}: {name}": relaxed[name] for k, name in enumerate(closest)}
        for label, name in [("predicted", predicted), ("ground state", next((p.name for p in known if p.ground_state), None))]:
            if name is not None and name in relaxed and name not in closest:
                crystals[f"{label}: {name}"] = relaxed[name]
    drawn.append((figures.rdf_figure(amorphous, crystals, folder / figures.RDF_PNG),
                  "partial radial distribution functions and coordination: the amorphous solid beside the closest polymorphs"))
    drawn.append((figures.shares_figure(report["polymorphs"], predicted, folder / figures.SHARES_PNG), "product shares"))
    drawn.append((figures.energy_share_figure(report["polymorphs"], predicted, folder / figures.ENERGY_SHARE_PNG), "energy against share"))
    images = {}
    for p in figures.chosen_products(report["polymorphs"], MOST_PRODUCT_IMAGES):
        cif = files.product_cif(out.file(files.PRODUCTS), p["name"])
        if cif.exists():
            images[p["name"]] = figures.structure_image(read(cif, index=0), folder / files.PRODUCTS / f"{p['name']}.png")  # type: ignore[arg-type]
    all_cifs = sorted(out.file(files.PRODUCTS).glob("*.cif")) if out.file(files.PRODUCTS).is_dir() else []
    settings = [[key, json.dumps(value) if isinstance(value, (list, tuple)) else value]
                for key, value in flat_settings(config["settings"]).items()]
    potential = config["potential"]
    sections = [
        f"<h1>{escape(page_title(report))}</h1>",
        f'<p class="prediction" id="prediction">{escape(prediction_line(report))}</p>',
        f"<p>Potential <b>{escape(potential['used'])}</b> on {escape(potential['device'])} · preset "
        f"{escape(str(config['settings']['preset']))} · seed {config['seed']} · {report['n_valid']} valid of "
        f"{report['n_subcells']} subcells · amorph {escape(config['amorph_version'])} · started {escape(config['started'])}</p>",
        "<h2>First to nucleate, by rule</h2>", _rules_table(report),
        f"<p>{escape(missing)}</p>" if (missing := not_formed_text(report)) else "",
        "<h2>What the subcells became</h2>", _products_table(report),
        _similarity_section(report),
        _melt_quench_section(report),
        "<h2>Pictures</h2>", "".join(image(path, alt) for path, alt in drawn),
        "<h2>Product structures</h2>",
        (f"<p>Drawn: the known polymorphs found and the most frequent other products, {len(images)} of "
         f"{len(report['polymorphs'])}; every product's CIF is below.</p>" if len(images) < len(report["polymorphs"]) else ""),
        _gallery(report, out, images),
        f"<details><summary>Every product's CIF ({len(all_cifs)})</summary><p>"
        + " · ".join(file_link(c, "chemical/x-cif") for c in all_cifs) + "</p></details>",
        "<h2>Settings</h2>", table(["setting", "value"], settings),
        f"<p>Command: <code>{escape(str(config.get('command', '')))}</code></p>",
        "<details><summary>Library versions</summary>" + table(["library", "version"], sorted(config.get("versions", {}).items())) + "</details>",
    ]
    return out.write_text(files.REPORT_HTML, page(page_title(report), sections))


def screen_page(rows: Sequence[dict[str, Any]], folder: Path, settings: dict[str, Any]) -> Path:
    """screen's report.html: the one-row-per-formula picture and table, linking each formula's own page."""
    out = RunDir(folder)
    png = figures.screen_figure(rows, out.file(files.FIGURES) / figures.SCREEN_PNG)
    several = len({r.get("potential") for r in rows}) > 1  # a screen over several potentials: one row per formula and potential
    body, classes = [], []
    for r in rows:
        agree = {True: "yes", False: "no"}.get(r.get("potentials_agree"), "")  # type: ignore[arg-type]
        probability = ""
        if isinstance(r.get("probability"), float):
            probability = f"{r['probability']:.2f}" + ("" if r.get("conclusive") else " (inconclusive)")
        body.append([r["formula"], *([r.get("potential") or ""] if several else []), r.get("predicted") or "", r.get("share_text", ""),
                     probability, r.get("ground_state") or "", "yes" if r.get("differs") else ("no" if r["status"] == "done" else ""),
                     *([agree] if several else []), r.get("wall_s", ""), r["status"], r.get("error", "")])
        classes.append("failed" if r["status"] != "done" else ("differs" if r.get("differs") or r.get("potentials_agree") is False else ""))
    links = " · ".join(
        f'<a href="{escape(Path(r["folder"]).name)}/{files.REPORT_HTML}">{escape(r["formula"])}'
        + (f' ({escape(str(r.get("potential")))})' if several else "") + "</a>" for r in rows if r["status"] == "done"
    )
    done = sum(r["status"] == "done" for r in rows)
    title = f"amorph screen: {len(rows)} {'runs' if several else 'formulas'}, {done} done"
    sections = [
        f"<h1>{escape(title)}</h1>",
        f'<p class="prediction" id="prediction">{escape(screen_sentence(rows))}</p>',
        table(["formula", *(["potential"] if several else []), "first to nucleate", "share [95% CI]", "P", "ground state (energy)", "differs",
               *(["potentials agree"] if several else []), "wall (s)", "status", "error"], body, classes),
        image(png, "predicted against ground-state polymorph, one row per formula"),
        f"<p>Each formula's own report: {links}</p>",
        "<h2>Settings</h2>", table(["setting", "value"], sorted((k, json.dumps(v)) for k, v in settings.items())),
    ]
    return out.write_text(files.REPORT_HTML, page(title, sections))


def screen_sentence(rows: Sequence[dict[str, Any]]) -> str:
    """'3 formulas: 2 done, 1 failed; a metastable polymorph first in 1 (TiO2).'"""
    done = [r for r in rows if r["status"] == "done"]
    failed = [r for r in rows if r["status"] == "failed"]
    differ = [r["formula"] for r in done if r.get("differs")]
    potentials = {r.get("potential") for r in rows}
    formulas = {r["formula"] for r in rows}
    what = f"{len(rows)} runs ({len(formulas)} formulas x {len(potentials)} potentials)" if len(potentials) > 1 else f"{len(rows)} formulas"
    text = f"{what}: {len(done)} done, {len(failed)} failed"
    others = len(rows) - len(done) - len(failed)
    if others:
        text += f", {others} not finished"
    text += f"; a polymorph other than the ground state first in {len(differ)} ({', '.join(differ)})" if differ else ""
    disagree = sorted({r["formula"] for r in rows if r.get("potentials_agree") is False})
    agree = sorted({r["formula"] for r in rows if r.get("potentials_agree") is True})
    if disagree or agree:
        text += f"; the potentials agree on {len(agree)} formula(s)"
        text += f" and disagree on {len(disagree)} ({', '.join(disagree)})" if disagree else ""
    return text + "."


def draw_report(run: Run, progress: ProgressSink) -> None:
    """After step 6: the pictures (figures/) and report.html, from the files the stages wrote."""
    progress.start("Drawing figures and report.html", 1)
    run_page(run.out)
    progress.advance()
    progress.finish()
