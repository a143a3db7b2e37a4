"""User-facing errors.

Every failure a user can cause (bad flags, a layout that does not fit the inputs,
a checkpoint in the wrong format) raises `FastAVError` with a one-line message that
says what to do. The CLI prints it as `error: <message>` and exits with code 2;
anything else is a bug and keeps its traceback.
"""


class FastAVError(Exception):
    """A user-facing error: one line, says what is wrong and what to do."""

    def __init__(self, message: str):
        # Multi-line messages would break the "one line per failure" contract of the CLI.
        super().__init__(" ".join(str(message).split()))


class MissingDependencyError(FastAVError):
    """An optional package is missing: the message says what installs it (optional.py)."""
