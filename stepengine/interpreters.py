"""Finding a Python interpreter: the one rule for a step's ``python:`` / ``venv:``
(``pip_install_requirements``) and a deployment's ``--python`` / ``job_variables`` (``execute``).

- A virtual environment or conda prefix has its interpreter at ``<prefix>/bin/python``.
- A bare name (``python3.12``) is looked up on ``PATH``; anything with a ``/`` is a path, taken from
  ``base`` when it is relative, and must be executable.

Each caller says what a failure is (a step's ``StepError``, a deployment's ``ConfigError``): this
module raises ``LookupError`` with the message.
"""

from __future__ import annotations

import os

__all__ = ["find_python", "venv_python"]


def venv_python(prefix: str | os.PathLike[str]) -> str:
    """The interpreter of a virtual environment or conda prefix."""
    return os.path.join(os.fspath(prefix), "bin", "python")


def find_python(python: str, *, base: str | None = None, label: str = "python") -> str:
    """The interpreter ``python`` names (``~`` expanded): a bare name found on ``PATH``, or a path
    (joined to ``base`` when relative and ``base`` is given) that is executable. ``LookupError``
    otherwise, its message starting with ``label`` (what named it: ``python``, ``--python``…)."""
    candidate = os.path.expanduser(python)
    if os.sep not in candidate:
        import shutil

        found = shutil.which(candidate)
        if found is None:
            raise LookupError(f"{label}: {candidate!r} is not on PATH")
        return found
    if base is not None:
        candidate = os.path.join(base, candidate)
    if not os.access(candidate, os.X_OK):
        raise LookupError(f"{label}: {candidate} is not an executable Python interpreter")
    return candidate
