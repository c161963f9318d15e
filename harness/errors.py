"""The exceptions a user can act on, each with the exit code the CLI gives it.

    HarnessError            exit 3: the run could not complete (target down, aborted)
    └── InputError          exit 2: a file, flag or value is wrong; raised before anything runs
        └── FileInputError  the problem has a file and, where known, a line

A failed gate is not an exception: it is a result (`passed: false`, exit 1).
Anything else that escapes is a bug and keeps its traceback.
"""

from __future__ import annotations

from pathlib import Path


class HarnessError(Exception):
    """A problem the user can act on; the CLI prints it without a traceback."""

    exit_code = 3


class InputError(HarnessError):
    """A plan, experiment, file or flag is wrong."""

    exit_code = 2


class FileInputError(InputError):
    """Something in a file is wrong; the message names the file and line."""

    def __init__(self, path: str | Path, problem: str, line: int | None = None) -> None:
        self.path = Path(path)
        self.problem = problem
        self.line = line
        where = f"{self.path}:{line}" if line is not None else str(self.path)
        super().__init__(f"{where}: {problem}")
