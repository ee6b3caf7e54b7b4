"""Project exceptions: user mistakes that the CLI prints as one line, without a traceback."""
from __future__ import annotations


class AlexNetError(Exception):
    """A user mistake or bad input: the message names the file/field and what was expected."""


class ConfigError(AlexNetError):
    """A flag or config value is out of range or inconsistent."""


class DataError(AlexNetError):
    """A dataset file or folder is missing, corrupt or of the wrong format."""


class CheckpointError(AlexNetError):
    """A checkpoint or weight file cannot be used (corrupt, unsafe, other architecture)."""


class TrainingDiverged(AlexNetError):
    """The loss became NaN/inf; the message names the step."""


class OutputError(AlexNetError):
    """An output cannot be written (read-only place, full disk, a file where a folder should be, ...)."""
