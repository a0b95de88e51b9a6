"""amorph: predict the first crystal polymorph to nucleate from an amorphous solid.

Implements the amorphous-to-crystalline (a2c) method of Aykol, Merchant, Batzner, Wei & Cubuk,
Nat. Comput. Sci. 5, 105-111 (2025), arXiv 2310.01117.

The Python API (imported on first use, so `import amorph` stays light):

    from amorph import predict, preset_settings

    report = predict(preset_settings("Cu", "smoke", potential="emt", seed=0), "runs/cu")
    report["prediction"]["polymorph"]  # 'fcc'
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

__version__ = "0.1.0"
__all__ = ["RunSettings", "predict", "preset_settings"]

if TYPE_CHECKING:
    from amorph.pipeline import predict
    from amorph.settings import RunSettings, preset_settings

_LAZY = {"predict": "amorph.pipeline", "RunSettings": "amorph.settings", "preset_settings": "amorph.settings"}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'amorph' has no attribute {name!r}")
