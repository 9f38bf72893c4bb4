"""Errors a user can act on.

Everything raised as a :class:`NasbenchError` is caught by the CLI and printed as one
line (``nasbench: error: ...``) with a non-zero exit; its message must say what was
wrong and how to fix it. Anything else escaping is a bug and keeps its traceback.
"""


class NasbenchError(Exception):
    """A failure caused by input or environment, explained in one actionable line."""

    exit_status = 2
    """What the command line exits with (2: bad input, nothing written)."""


class UnknownNameError(NasbenchError, KeyError):
    """A method, space, protocol, genotype or operation name that is not registered."""

    def __init__(self, kind: str, name: str, known):
        self.kind, self.name, self.known = kind, name, sorted(known)
        super().__init__(f"unknown {kind} {name!r}; known: {', '.join(self.known)}")

    def __str__(self) -> str:  # KeyError would otherwise repr() the message
        return self.args[0]


class ConfigError(NasbenchError, ValueError):
    """A protocol, genotype or data file that does not have the required shape."""


class DataError(NasbenchError):
    """Training data that is missing, unreachable or malformed."""
