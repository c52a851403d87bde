"""Errors kgen raises on bad input: one line, naming what is wrong and where."""


class KgenError(ValueError):
    """Base class for every user-facing kgen error."""


class OpError(KgenError):
    """An op was given shapes or attributes it cannot take. The message starts with the op name."""

    def __init__(self, op: str, message: str) -> None:
        super().__init__(f"{op}: {message}")
        self.op = op


class TEError(KgenError):
    """A tensor expression is malformed (wrong arity, unknown axis, out-of-bounds read)."""
