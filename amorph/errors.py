"""The one exception type that means "the user asked for something we cannot do"."""


class AmorphError(Exception):
    """Bad input or an unusable environment: the CLI prints one line and exits with code 2.

    Anything else that escapes is a bug and keeps its traceback.
    """


class AmorphWarning(UserWarning):
    """Something the user should know that does not stop the run (a database file that could not be
    read, for example): the CLI prints it as one line, `amorph: warning: ...`."""
