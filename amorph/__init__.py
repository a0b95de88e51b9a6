"""amorph: predict the first crystal polymorph to nucleate from an amorphous solid.

Implements the amorphous-to-crystalline (a2c) method of Aykol, Merchant, Batzner,
Wei & Cubuk, Nat. Comput. Sci. 5, 105-111 (2025), arXiv 2310.01117.
"""

__version__ = "0.1.0"

import os as _os

# One BLAS thread. Our linear algebra is on 3x3 matrices, which gain nothing from threads, while
# OpenBLAS's idle threads busy-wait after every call and take the cores from torch's threads: on
# 2 cores an ASE FIRE + FrechetCellFilter step with a matgl model measured 125 ms with OpenBLAS's
# default threads and 24 ms with one. It only takes effect if set before numpy is first imported,
# so the CLI (cli/__init__) and the benchmarks import this package first; a user's own setting wins.
_os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
