"""The `amorph` command line: parses options, calls one pipeline function, renders the result."""

import amorph  # noqa: F401  (first, before numpy: it sets one BLAS thread, see amorph/__init__)
