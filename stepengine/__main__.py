"""``python -m stepengine``: the same as the ``stepengine`` command.

``python -m`` puts the working directory first on ``sys.path``; the ``stepengine`` command does not.
It is taken off again here, before the verb imports anything, so that both behave alike and a
module lying in the directory being checked (say a ``yaml.py``, or the ``mysteps.py`` an untrusted
prefect.yaml names) is never imported by ``validate``, ``plan``, ``steps`` or ``schema``, nor found
by ``run`` (issue 14). ``PYTHONPATH`` is honoured as set. What stepengine itself imports before this
line runs is Python's affair: ``python -P -m stepengine`` (or ``PYTHONSAFEPATH=1``, Python 3.11+)
keeps the directory off from the start.
"""

import os
import sys


def _drop_working_directory() -> None:
    try:
        cwd = os.getcwd()
    except OSError:  # deleted: nothing to import from it anyway
        cwd = None
    if sys.path and sys.path[0] in ("", cwd) and not (sys.version_info >= (3, 11) and sys.flags.safe_path):
        del sys.path[0]


_drop_working_directory()

from stepengine.cli import main  # noqa: E402  (after the sys.path fix, on purpose)

main()
