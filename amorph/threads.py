"""One BLAS thread for amorph's work, set where a run starts (never on import).

Why: our linear algebra is on 3x3 matrices, which gain nothing from threads, while OpenBLAS's idle
threads busy-wait after every call and take the cores from torch's threads: on 2 cores an ASE FIRE +
FrechetCellFilter step with a matgl model measured 125 ms with OpenBLAS's default threads and 24 ms
with one (docs/performance.md). A user's own OPENBLAS_NUM_THREADS wins.
"""

from __future__ import annotations

import os

_USER_SETTING = "OPENBLAS_NUM_THREADS" in os.environ


def one_blas_thread() -> None:
    """Limit OpenBLAS to one thread in this process and in the worker processes it starts later."""
    if _USER_SETTING:
        return
    os.environ["OPENBLAS_NUM_THREADS"] = "1"  # read by each spawned worker when it loads numpy
    from threadpoolctl import ThreadpoolController

    ThreadpoolController().select(internal_api="openblas").limit(limits=1)  # already loaded here
