"""The exceptions amorph raises on purpose: bad input (AmorphError) and a failed simulation (SimulationError)."""


class AmorphError(Exception):
    """Bad input or an unusable environment: the CLI prints one line and exits with code 2.

    Anything else that escapes is a bug and keeps its traceback.
    """


class SimulationError(AmorphError):
    """A simulation that failed on good input: a melt-quench that could not go on however short its
    time step, a potential that cannot evaluate the packed cell. The CLI prints what failed, where,
    and exits with code 3, so that a script tells it from a typo (2)."""


class AmorphWarning(UserWarning):
    """Something the user should know that does not stop the run (a database file that could not be
    read, for example): the CLI prints it as one line, `amorph: warning: ...`."""
