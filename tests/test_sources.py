"""Sources of known polymorphs: Materials Project (recorded answers, no network), user files, prototypes, merging."""

from __future__ import annotations

import json
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from ase.io import write
from pymatgen.io.ase import AseAtomsAdaptor

from amorph.errors import AmorphError
from amorph.matching import materials_project as mp
from amorph.matching.database import known_polymorphs
from amorph.matching.prototypes import prototype_polymorphs, structure_type
from amorph.matching.sources import gather, merge
from amorph.matching.symmetry import find_symmetry
from amorph.matching.user_files import user_polymorphs

RECORDED = Path(__file__).parent / "data" / "mp" / "TiO2.json"


@pytest.fixture
def cache(tmp_path, monkeypatch):
    """An empty user cache and a key, so nothing falls back on the developer's own settings."""
    monkeypatch.setenv("AMORPH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setenv("MP_API_KEY", "test-key")
    return tmp_path / "cache"


def _recorded(formula: str, key: str) -> dict:
    assert key == "test-key"
    answer = json.loads(RECORDED.read_text())
    return {k: answer[k] for k in ("formula", "database_version", "entries")}


# ------------------------------------------------------------------------------------- Materials Project


def test_mp_online_fetches_and_caches_with_version_and_date(cache):
    entries = mp.mp_polymorphs("TiO2", fetch=_recorded, reachable=lambda: True)
    assert [p.name for p in entries] == ["mp-390", "mp-2657", "mp-99999999"]  # lowest E above hull first
    assert entries[0].ground_state and not any(p.ground_state for p in entries[1:])
    assert entries[0].spacegroup_number == 141 and entries[0].origin == "mp"
    assert entries[2].energy_above_hull == pytest.approx(0.35)
    saved = json.loads(mp.cache_file("TiO2").read_text())
    assert saved["database_version"] == "2025.09.25-test"
    assert saved["retrieved"].startswith(time.strftime("%Y-"))
    assert "2025.09.25-test" in entries[0].source


def test_mp_offline_reuses_the_cache(cache):
    mp.mp_polymorphs("TiO2", fetch=_recorded, reachable=lambda: True)

    def no_network(formula, key):
        raise AssertionError("offline: must not fetch")

    again = mp.mp_polymorphs("TiO2", fetch=no_network, reachable=lambda: False)
    assert [p.name for p in again] == ["mp-390", "mp-2657", "mp-99999999"]


def test_mp_offline_without_cache_is_one_clear_error(cache):
    with pytest.raises(AmorphError, match="cannot reach api.materialsproject.org and no cached answer for TiO2"):
        mp.mp_polymorphs("TiO2", fetch=_recorded, reachable=lambda: False)


def test_mp_without_key_or_cache_names_the_variable(cache, monkeypatch):
    monkeypatch.delenv("MP_API_KEY")
    monkeypatch.setattr(mp, "api_key", lambda: None)
    with pytest.raises(AmorphError, match="MP_API_KEY"):
        mp.mp_polymorphs("TiO2", fetch=_recorded, reachable=lambda: True)


def test_host_probe_on_loopback_open_and_closed_ports():
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        assert mp.host_reachable("127.0.0.1", timeout=2.0, port=port)
    started = time.perf_counter()
    assert not mp.host_reachable("127.0.0.1", timeout=2.0, port=port)  # closed now: refused at once
    assert time.perf_counter() - started < 2.5


def test_mp_api_documents_are_converted(cache, monkeypatch):
    """The real fetch function, with mp-api's client replaced by one that returns recorded documents."""
    import mp_api.client

    answer = json.loads(RECORDED.read_text())
    docs = [
        {
            "material_id": e["material_id"],
            "structure": e["structure"],
            "symmetry": SimpleNamespace(symbol=e["spacegroup_symbol"], number=e["spacegroup_number"]),
            "energy_above_hull": e["energy_above_hull"],
            "theoretical": e["theoretical"],
        }
        for e in answer["entries"]
    ]

    class FakeRester:
        def __init__(self, key, **kwargs):
            assert key == "test-key" and kwargs["use_document_model"] is False
            self.materials = SimpleNamespace(summary=SimpleNamespace(search=self.search))

        def search(self, formula, fields):
            assert formula == "TiO2" and "energy_above_hull" in fields
            return docs

        def get_database_version(self):
            return "2025.09.25-test"

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            return False

    monkeypatch.setattr(mp_api.client, "MPRester", FakeRester)
    fetched = mp.fetch_with_mp_api("TiO2", "test-key")
    assert fetched["database_version"] == "2025.09.25-test"
    assert [e["material_id"] for e in fetched["entries"]] == ["mp-390", "mp-2657", "mp-99999999"]
    assert fetched["entries"][1]["spacegroup_number"] == 136


def test_cli_mp_offline_without_cache_fails_fast_in_one_line(cli, cache, tmp_path, monkeypatch):
    monkeypatch.setattr(mp, "host_reachable", lambda *a, **k: False)
    out = tmp_path / "run"
    started = time.perf_counter()
    code, stdout, stderr = cli("predict", "Cu", "--potential", "emt", "--preset", "smoke", "--db", "mp", "--out", str(out))
    assert code == 2 and time.perf_counter() - started < 5
    assert stderr.count("\n") == 1 and "no cached answer for Cu" in stderr
    assert not out.exists()


# ----------------------------------------------------------------------------------------------- merging


def test_builtin_and_mp_merge_without_duplicates(cache):
    mp.mp_polymorphs("TiO2", fetch=_recorded, reachable=lambda: True)  # fill the cache
    merged = merge(known_polymorphs("TiO2"), mp.mp_polymorphs("TiO2", fetch=_recorded, reachable=lambda: False))
    names = [p.name for p in merged]
    assert "mp-390" not in names and "mp-2657" not in names  # anatase and rutile, already built in
    assert "mp-99999999" in names  # fluorite-type: new
    anatase = next(p for p in merged if p.name == "anatase")
    assert "mp-390" in anatase.note
    assert [p.name for p in merged if p.ground_state] == ["rutile"]  # the first source decides


def test_entries_of_one_source_are_never_merged():
    """Cubic and tetragonal ZrO2 fit each other under the loose matcher, but both stay."""
    names = [p.name for p in gather("ZrO2", ("builtin",))]
    assert {"cubic", "tetragonal", "orthorhombic", "monoclinic"} <= set(names)


# ------------------------------------------------------------------------------------------------ user files


def _write_user_folder(folder: Path) -> None:
    folder.mkdir()
    tio2 = {p.name: p.structure for p in known_polymorphs("TiO2")}
    adaptor = AseAtomsAdaptor()
    tio2["rutile"].to(filename=str(folder / "My Rutile.cif"))
    anatase = adaptor.get_atoms(tio2["anatase"])
    anatase.info["name"] = "film-anatase"
    write(folder / "frames.extxyz", [anatase], format="extxyz")
    known_polymorphs("Cu")[0].structure.to(filename=str(folder / "copper.cif"))  # another formula: ignored
    (folder / "README.txt").write_text("not a structure")


def test_user_folder_names_from_files_and_fields(tmp_path):
    folder = tmp_path / "mine"
    _write_user_folder(folder)
    found = {p.name: p for p in user_polymorphs(folder, "TiO2")}
    assert set(found) == {"my-rutile", "film-anatase"}
    assert found["my-rutile"].spacegroup_number == 136 and found["film-anatase"].spacegroup_number == 141
    assert [p.name for p in user_polymorphs(folder, "Cu")] == ["copper"]


def test_ase_database_file(tmp_path):
    import ase.db

    path = tmp_path / "refs.db"
    with ase.db.connect(path) as db:
        for p in known_polymorphs("Cu"):
            db.write(AseAtomsAdaptor().get_atoms(p.structure), name=f"ref-{p.name}", ground_state=p.ground_state)
    found = {p.name: p for p in user_polymorphs(path, "Cu")}
    assert set(found) == {"ref-fcc", "ref-hcp", "ref-bcc"}
    assert found["ref-fcc"].ground_state and not found["ref-bcc"].ground_state


def test_missing_or_wrong_source_is_an_error(tmp_path):
    with pytest.raises(AmorphError, match="no such folder"):
        gather("TiO2", (str(tmp_path / "nowhere"),))
    (tmp_path / "x.txt").write_text("hi")
    with pytest.raises(AmorphError, match="expected a folder"):
        gather("TiO2", (str(tmp_path / "x.txt"),))


def test_predict_names_products_from_user_cifs(cli, tmp_path):
    """Only the user's folder as source: the products carry the user's names."""
    folder = tmp_path / "cu-refs"
    folder.mkdir()
    known_polymorphs("Cu")[0].structure.to(filename=str(folder / "my-fcc.cif"))
    out = tmp_path / "run"
    code, stdout, stderr = cli(
        "predict", "Cu", "--potential", "emt", "--preset", "smoke", "--seed", "0", "--db", str(folder), "--out", str(out), "--json"
    )
    assert code == 0, stderr
    report = json.loads(stdout)
    assert report["prediction"]["polymorph"] == "my-fcc"
    assert report["known_polymorphs"] == {"sources": [str(folder)], "names": ["my-fcc"], "not_formed": []}


def test_malformed_and_empty_files_are_skipped_with_a_warning_naming_each(cli, tmp_path):
    """One bad file in a folder of references costs a warning line, not the run (and no traceback)."""
    folder = tmp_path / "cu-refs"
    folder.mkdir()
    known_polymorphs("Cu")[0].structure.to(filename=str(folder / "my-fcc.cif"))
    (folder / "empty.cif").write_text("")
    (folder / "POSCAR").write_text("not a POSCAR\n1.0\nthree numbers missing\n")
    (folder / "broken.cif").write_text("data_x\n_cell_length_a 3.6\nloop_\n_atom_site_label\n")
    out = tmp_path / "run"
    code, stdout, stderr = cli(
        "predict", "Cu", "--potential", "emt", "--preset", "smoke", "--seed", "0", "--db", str(folder), "--out", str(out), "--quiet"
    )
    assert code == 0, stderr
    assert "Traceback" not in stderr
    warned = [line for line in stderr.splitlines() if line.startswith("amorph: warning:")]
    assert sorted(line.split("skipped ")[1].split(":")[0] for line in warned) == ["POSCAR", "broken.cif", "empty.cif"]
    assert all(f"--db {folder}" in line for line in warned)
    assert json.loads((out / "report.json").read_text())["prediction"]["polymorph"] == "my-fcc"


# ------------------------------------------------------------------------------------------------ prototypes


def test_prototypes_decorate_a_ternary_oxide_with_oxygen_on_the_anion_sites():
    candidates = {p.name: p for p in prototype_polymorphs("SrTiO3", volume_per_atom=12.0, max_atoms=10)}
    perovskite = candidates["cubic-perovskite-type"].structure
    assert perovskite.composition.reduced_formula == "SrTiO3"
    assert find_symmetry(perovskite).number == 221
    # O is the most electronegative element and sits on the 3-fold site, 6 around each Ti
    ti = next(site for site in perovskite if site.specie.symbol == "Ti")
    assert sum(n.specie.symbol == "O" for n in perovskite.get_neighbors(ti, 0.6 * perovskite.lattice.a)) == 6
    spinels = prototype_polymorphs("MgAl2O4", volume_per_atom=9.5, max_atoms=14)
    assert any("spinel" in p.name for p in spinels)


def test_structure_type_names_an_unknown_by_its_prototype():
    rutile_sno2 = known_polymorphs("SnO2")[0].structure
    assert structure_type(rutile_sno2, 136) == "rutile-type"
    odd = rutile_sno2.copy()
    odd.perturb(0.3, min_distance=0.2)
    label = structure_type(odd, find_symmetry(odd).number)
    assert label.startswith("AB2_")  # AFLOW-style fallback: stoichiometry_Pearson_spacegroup


def test_formula_absent_everywhere_gets_named_products_through_prototypes(cli, tmp_path):
    """Cu3Au is in no source: the AB3 prototypes, relaxed with EMT, stand in for known polymorphs."""
    out = tmp_path / "cu3au"
    code, stdout, stderr = cli("predict", "Cu3Au", "--potential", "emt", "--preset", "smoke", "--seed", "0", "--out", str(out), "--json")
    assert code == 0, stderr
    refs = json.loads((out / "known_polymorphs.json").read_text())["polymorphs"]
    assert refs and all(r["origin"] == "prototypes" for r in refs)
    assert all("-type" in r["name"] for r in refs)
    assert sum(r["ground_state"] for r in refs) == 1
    report = json.loads(stdout)
    rows = report["polymorphs"]
    assert rows
    for row in rows:
        assert row["known"] or row["structure_type"], "an unknown product must carry a structure-type label"


def test_default_databases_are_sources_by_name():
    """The one list of default sources names sources that amorph.matching.sources knows."""
    from amorph.matching.sources import BUILTIN, PROTOTYPES, check_sources
    from amorph.settings import DEFAULT_DATABASES

    assert DEFAULT_DATABASES == (BUILTIN, PROTOTYPES)
    check_sources(DEFAULT_DATABASES)
