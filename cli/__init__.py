"""The `amorph` command line: parses options, calls one pipeline function, renders the result."""
