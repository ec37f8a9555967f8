"""Typed errors with one-line messages. Library code raises these; only the CLIs turn them into exit codes."""

from __future__ import annotations

from pathlib import Path


class TrtInpaintError(Exception):
    """Base class. ``str(err)`` is always one line."""

    exit_code = 1

    def __init__(self, message: str, path: str | Path | None = None):
        message = " ".join(str(message).split())  # one line, always
        self.message = message
        self.path = None if path is None else Path(path)
        super().__init__(f"{self.path}: {message}" if self.path is not None else message)

    def __reduce__(self):
        # pickled with its class, message and path (work items carry errors between processes)
        return (self.__class__, (self.message, self.path))


class InputError(TrtInpaintError):
    """A user-supplied image, mask, folder or option is unusable."""

    exit_code = 2


class CheckpointError(TrtInpaintError):
    """A weights file is missing, damaged, unsafe or does not match the model."""

    exit_code = 3


class EngineError(TrtInpaintError):
    """A built engine / ONNX file is missing, stale, corrupt or built for another GPU or toolchain."""

    exit_code = 4


class BackendUnavailable(TrtInpaintError):
    """A backend cannot run here (module not installed, no GPU, ...). The message says why."""

    exit_code = 5


class BudgetError(TrtInpaintError):
    """A stage cannot fit the memory budget even alone."""

    exit_code = 6


class Cancelled(TrtInpaintError):
    """The owner of a work item gave up on it before it finished (a server request past its deadline, or
    whose client went away)."""

    exit_code = 130
