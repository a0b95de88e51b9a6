"""Known polymorphs from the Materials Project (`--db mp`), through the official mp-api client.

Every answer is cached as JSON under the user's cache directory with the database version and the
retrieval date, so a run can be repeated offline. Online, the answer is fetched again and the cache
refreshed; offline, the cache is used; offline with no cache, the user gets one line, fast: mp-api
itself retries for a long time, so we probe the host with a short timeout before calling it.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from pymatgen.core import Structure

from amorph.errors import AmorphError
from amorph.matching.polymorph import Polymorph
from amorph.network import PROBE_SECONDS, tcp_reachable

MP_HOST = "api.materialsproject.org"


def cache_dir() -> Path:
    """$AMORPH_CACHE_DIR, else $XDG_CACHE_HOME/amorph, else ~/.cache/amorph."""
    if os.environ.get("AMORPH_CACHE_DIR"):
        return Path(os.environ["AMORPH_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "amorph"


def cache_file(formula: str) -> Path:
    return cache_dir() / "materials_project" / f"{formula}.json"


def api_key() -> str | None:
    """MP_API_KEY, else the key in pymatgen's settings file (PMG_MAPI_KEY)."""
    key = os.environ.get("MP_API_KEY")
    if key:
        return key
    try:
        from pymatgen.core import SETTINGS

        return SETTINGS.get("PMG_MAPI_KEY") or None
    except ImportError:  # pragma: no cover - pymatgen always has SETTINGS
        return None


def host_reachable(host: str = MP_HOST, timeout: float = PROBE_SECONDS, port: int = 443) -> bool:
    """A TCP connection to the API host within the timeout."""
    return tcp_reachable(host, port, timeout)


def fetch_with_mp_api(formula: str, key: str) -> dict[str, Any]:
    """Ask the Materials Project for every material of this formula. Returns the cacheable answer."""
    try:
        from mp_api.client import MPRester
    except ImportError as exc:  # mp-api is a dependency; this only trips on a broken install
        raise AmorphError("--db mp needs the mp-api package (pip install mp-api)") from exc
    fields = ["material_id", "structure", "symmetry", "energy_above_hull", "theoretical"]
    with MPRester(key, mute_progress_bars=True, use_document_model=False) as mpr:
        docs = mpr.materials.summary.search(formula=formula, fields=fields)
        version = mpr.get_database_version()
    entries = []
    for doc in docs:
        structure = doc["structure"]
        symmetry = doc["symmetry"]
        entries.append(
            {
                "material_id": str(doc["material_id"]),
                "structure": structure.as_dict() if isinstance(structure, Structure) else structure,
                "spacegroup_symbol": str(_field(symmetry, "symbol")),
                "spacegroup_number": int(_field(symmetry, "number")),
                "energy_above_hull": float(doc["energy_above_hull"]),
                "theoretical": bool(doc.get("theoretical", False)),
            }
        )
    return {"formula": formula, "database_version": str(version), "entries": entries}


def _field(obj: Any, name: str) -> Any:
    return obj[name] if isinstance(obj, dict) else getattr(obj, name)


def mp_polymorphs(
    formula: str,
    *,
    fetch: Callable[[str, str], dict[str, Any]] = fetch_with_mp_api,
    reachable: Callable[[], bool] = host_reachable,
) -> list[Polymorph]:
    """Polymorphs of a reduced formula from the Materials Project: fresh when online, cached when not."""
    path = cache_file(formula)
    key = api_key()
    if key and reachable():
        try:
            answer = fetch(formula, key)
        except AmorphError:
            raise
        except Exception as exc:  # network, authentication or server errors from mp-api
            if not path.is_file():
                raise AmorphError(f"--db mp: the Materials Project query for {formula} failed: {exc}".splitlines()[0]) from exc
        else:
            answer["retrieved"] = datetime.now(UTC).isoformat(timespec="seconds")
            answer["client"] = "mp-api"
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_suffix(".tmp")
            tmp.write_text(json.dumps(answer))
            tmp.replace(path)
            return polymorphs_from_answer(answer)
    if path.is_file():
        return polymorphs_from_answer(json.loads(path.read_text()))
    why = "no Materials Project API key (set MP_API_KEY)" if not key else f"cannot reach {MP_HOST}"
    raise AmorphError(f"--db mp: {why} and no cached answer for {formula} in {path.parent}")


def polymorphs_from_answer(answer: dict[str, Any]) -> list[Polymorph]:
    """Cached or fresh answer -> Polymorphs, lowest energy above hull first and marked as the ground state."""
    entries = sorted(answer["entries"], key=lambda e: e["energy_above_hull"])
    where = f"Materials Project {answer.get('database_version', '?')}, retrieved {answer.get('retrieved', '?')}"
    return [
        Polymorph(
            formula=answer["formula"],
            name=e["material_id"].lower(),
            mineral="",
            spacegroup_symbol=e["spacegroup_symbol"],
            spacegroup_number=e["spacegroup_number"],
            structure=Structure.from_dict(e["structure"]),
            source=f"{e['material_id']} ({where})",
            ground_state=i == 0,
            note=f"E above hull {1000 * e['energy_above_hull']:.0f} meV/atom (PBE/r2SCAN mix of MP)"
            + ("; theoretical (no ICSD match)" if e.get("theoretical") else ""),
            origin="mp",
            energy_above_hull=e["energy_above_hull"],
        )
        for i, e in enumerate(entries)
    ]
