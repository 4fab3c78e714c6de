"""``set_working_directory``: change the process's working directory for the steps that follow."""

from __future__ import annotations

import os

from stepengine.step_api import StepError


def set_working_directory(directory: str) -> dict[str, str]:
    """Change the current working directory; later steps (and the flow) run there.

    Returns ``{"directory": <absolute path>}``.
    """
    if not os.fspath(directory):
        # os.path.abspath("") is the current directory: an empty value (often a template that
        # rendered to nothing) would silently stay where the run is
        raise StepError("directory is empty: give the directory to change to")
    path = os.path.abspath(os.path.expanduser(os.fspath(directory)))
    if not os.path.exists(path):
        raise StepError(f"cannot change to {directory!r}: no such directory")
    if not os.path.isdir(path):
        raise StepError(f"cannot change to {directory!r}: not a directory")
    try:
        os.chdir(path)
    except PermissionError:
        raise StepError(f"cannot change to {directory!r}: permission denied") from None
    return {"directory": os.getcwd()}  # as Prefect 3 returns it (symbolic links resolved)
