"""report.html and the figures: every run writes them, and a real browser (headless Chromium) shows the
page with its title, the prediction sentence and every picture loaded.

.ci/run installs Debian's chromium and sets AMORPH_REQUIRE_BROWSER=1, so there the browser test
cannot be skipped; elsewhere it is skipped when no chromium is installed."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from html import unescape

import pytest

from amorph.results import figures
from amorph.results.report import prediction_line

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
# as the machine's notes advise: no sandbox as root, and no background connections on a closed network
FLAGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync", "--hide-scrollbars"]
# appended to a copy of the page: after every image has loaded or failed, say how many of each
CHECK = """<script>window.addEventListener("load", () => {
  const images = [...document.images];
  const ok = images.filter(i => i.complete && i.naturalWidth > 0).length;
  const box = document.createElement("pre"); box.id = "image-check";
  box.textContent = `images ${images.length} loaded ${ok}`; document.body.appendChild(box);
});</script>"""


def test_every_run_writes_its_figures_and_page(cu_smoke_run):
    run = cu_smoke_run[0]
    for name in (figures.MELT_QUENCH_PNG, figures.RDF_PNG, figures.SHARES_PNG, figures.ENERGY_SHARE_PNG):
        assert (run / "figures" / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", name
    report = json.loads((run / "report.json").read_text())
    page = (run / "report.html").read_text()
    assert prediction_line(report) in unescape(page)
    for product in (run / "products").glob("*.cif"):  # every product's CIF can be downloaded from the page
        assert f'download="{product.name}"' in page
    assert 'src="http' not in page and "<script" not in page  # self-contained, nothing fetched


def test_partial_rdf_of_fcc_copper_peaks_at_the_nearest_neighbour_distance():
    from ase.build import bulk

    r, g = figures.partial_rdf(bulk("Cu", "fcc", a=3.61), "Cu", "Cu")  # a 1-atom cell: shells far beyond it
    assert abs(r[g.argmax()] - 3.61 / 2**0.5) < 0.03
    assert abs(r[g[r < 3.2].argmax()] - 2.553) < 0.03 and g[(r > 1.0) & (r < 2.2)].max() < 1e-6


def test_partial_rdf_of_an_ideal_gas_is_one_out_to_the_edge_and_symmetric():
    """Random points (no correlations): every partial g(r) is 1 wherever there are pairs to count,
    up to r_max (the smearing has data past it), and g_ab = g_ba."""
    import numpy as np
    from ase import Atoms

    rng = np.random.default_rng(0)
    gas = Atoms(["Ti"] * 400 + ["O"] * 800, positions=rng.random((1200, 3)) * 14.0, cell=[14.0] * 3, pbc=True)
    r, ti_o = figures.partial_rdf(gas, "Ti", "O")
    _, o_ti = figures.partial_rdf(gas, "O", "Ti")
    _, o_o = figures.partial_rdf(gas, "O", "O")
    far = r > 3.0
    assert np.allclose(ti_o, o_ti)
    assert abs(ti_o[far].mean() - 1) < 0.03 and abs(o_o[far].mean() - 1) < 0.03
    assert abs(o_o[r > 5.6].mean() - 1) < 0.05  # no fall-off at the edge


@pytest.mark.skipif(CHROMIUM is None and not os.environ.get("AMORPH_REQUIRE_BROWSER"), reason="no chromium installed")
def test_the_page_renders_in_headless_chromium(cu_smoke_run, tmp_path):
    assert CHROMIUM is not None, "AMORPH_REQUIRE_BROWSER is set but no chromium is installed"
    run = cu_smoke_run[0]
    report = json.loads((run / "report.json").read_text())
    checked = tmp_path / "checked.html"
    checked.write_text((run / "report.html").read_text().replace("</body>", CHECK + "</body>"))
    common = [CHROMIUM, *FLAGS, f"--user-data-dir={tmp_path / 'profile'}"]
    dom = subprocess.run([*common, "--virtual-time-budget=10000", "--dump-dom", checked.as_uri()],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    title = unescape(re.search(r"<title>(.*?)</title>", dom, re.S).group(1))
    assert title == f"amorph Cu: {report['prediction']['polymorph']} first" or title.startswith("amorph Cu: inconclusive")
    shown = unescape(re.search(r'<p class="prediction" id="prediction">(.*?)</p>', dom, re.S).group(1))
    assert shown == prediction_line(report)
    count = re.search(r'<pre id="image-check">images (\d+) loaded (\d+)</pre>', dom)
    assert count, "the page's load event never ran"
    images, loaded = int(count.group(1)), int(count.group(2))
    assert images >= 4 + 1 and loaded == images  # four figures and at least one product
    shot = tmp_path / "page.png"
    subprocess.run([*common, "--window-size=1280,2400", f"--screenshot={shot}", (run / "report.html").as_uri()],
                   capture_output=True, timeout=120, check=True)
    assert shot.stat().st_size > 50_000  # a blank page is a few kB


def test_the_energy_plot_is_scaled_by_the_polymorphs_that_compete():
    """Known polymorphs 1 meV/atom apart must not sit on one line because an unknown lies 900 meV/atom up."""
    from amorph.results import figures

    def row(name, known, share, energy):
        return {"name": name, "known": known, "count": 3, "share": share, "lowest_energy_per_atom": energy}

    rows = [row("fcc", True, 0.6, -4.000), row("hcp", True, 0.1, -4.001), row("bcc", True, 0.05, -3.990),
            row("unknown-1", False, 0.05, -3.1), row("unknown-2", False, 0.05, -3.95)]
    fig = figures.energy_share_plot(rows, "hcp")
    ax = fig.axes[0]
    low, high = ax.get_ylim()
    assert high < 100 and low < 0  # unknown-2's 51 meV/atom (within the window) sets the scale, not unknown-1's 901
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert legend == ["named first (hcp)", "known polymorph", "no known polymorph", "1 more above 64 meV/atom (off scale)"]
