"""Where stepengine keeps its files (one home directory, ``$STEPENGINE_HOME`` or ``~/.stepengine``), and
where it runs (a working directory that still exists)."""

from __future__ import annotations

import os
import typing as t

if t.TYPE_CHECKING:
    from pathlib import Path

__all__ = ["WORKING_DIRECTORY_GONE", "check_working_directory", "home_directory", "home_path"]

#: what is said when the working directory was deleted under a running shell or by a step
WORKING_DIRECTORY_GONE = (
    "the working directory no longer exists (it was deleted after the shell or a step entered it)"
)


def home_path(env: t.Mapping[str, str] | None = None) -> str:
    """stepengine's home as a string (for the cold-run path, which does without pathlib)."""
    env = os.environ if env is None else env
    return env.get("STEPENGINE_HOME") or os.path.join(os.path.expanduser("~"), ".stepengine")


def home_directory() -> Path:
    """stepengine's home (caches, the embedded store): ``$STEPENGINE_HOME``, default ``~/.stepengine``.

    Not created here: whoever writes into it creates what it needs (private: mode 0700).
    """
    from pathlib import Path

    return Path(home_path())


def check_working_directory() -> None:
    """Raise ``ConfigError`` when the working directory was deleted: relative paths, child processes
    and ``set_working_directory: .`` would otherwise fail with a bare ``FileNotFoundError``."""
    try:
        os.getcwd()
    except FileNotFoundError:
        from stepengine.errors import ConfigError

        raise ConfigError(WORKING_DIRECTORY_GONE, hint="cd to an existing directory and run again") from None
