"""The step-author API: the only stepengine names a step package needs (``builtin_steps`` included).

A step is a plain function (sync or ``async``) whose keyword arguments are the step's YAML arguments
and whose ``dict`` result becomes its outputs. Publish it under the ``stepengine.steps`` entry-point
group::

    [project.entry-points."stepengine.steps"]
    say_hello = "my_steps:say_hello"

Inside the function, use:

- ``get_logger()`` for log lines (masked by the engine),
- ``mask(value)`` for any credential the step reads, so it never shows up anywhere,
- ``run_process([...])`` for child processes (streamed, masked, killed as a group on interrupt),
- ``emit_output(line)`` to report a line of output yourself,
- ``atomic_directory(target)`` / ``safe_join(root, key)`` for writing files safely,
- ``raise StepError("...", hint="...")`` for an expected failure (shown without a traceback),
- ``load_block(block_type, name)`` for a block's data, read through the run's block store,
- ``home_directory()`` for stepengine's home (``$STEPENGINE_HOME``), e.g. for a cache,
- ``current_step()`` for the section, index, id and function of the running step,
- ``find_python(name_or_path)`` / ``venv_python(prefix)`` for a Python interpreter a step is given.
"""

from stepengine.context import StepInfo, current_step, emit_output, get_logger, load_block
from stepengine.errors import ProcessError, StepError
from stepengine.fs import atomic_directory, safe_join
from stepengine.interpreters import find_python, venv_python
from stepengine.masking import mask
from stepengine.paths import home_directory
from stepengine.process import ProcessResult, run_process

__all__ = [
    "ProcessError",
    "ProcessResult",
    "StepError",
    "StepInfo",
    "atomic_directory",
    "current_step",
    "emit_output",
    "find_python",
    "get_logger",
    "home_directory",
    "load_block",
    "mask",
    "run_process",
    "safe_join",
    "venv_python",
]
