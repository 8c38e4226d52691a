"""The failures a command reports in one line and exit status 2, as it does a
ValueError: each stage's own error classes derive from ``CommandError``, so
that the command line catches them without importing the stages."""
from __future__ import annotations


class CommandError(RuntimeError):
    """A failure with a message meant for the user: no traceback."""
