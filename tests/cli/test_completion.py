"""Shell completion, as the README tells users to enable it (Click's ``_STEPENGINE_COMPLETE``)."""

from __future__ import annotations

import os
import subprocess
import sys


def _complete(words: str, shell: str = "bash") -> list[str]:
    env = dict(
        os.environ,
        COMP_WORDS=words,
        COMP_CWORD=str(len(words.split()) - (0 if words.endswith(" ") else 1)),
        _STEPENGINE_COMPLETE=f"{shell}_complete",
    )
    done = subprocess.run(
        [sys.executable, "-c", "from stepengine.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if "," in line]


def test_verbs_complete() -> None:
    assert "run" in _complete("stepengine ru")
    assert {"validate", "plan"} <= set(_complete("stepengine "))


def test_options_complete() -> None:
    assert "--section" in _complete("stepengine run --sec")


def test_bash_source_is_a_script() -> None:
    env = dict(os.environ, _STEPENGINE_COMPLETE="bash_source")
    done = subprocess.run(
        [sys.executable, "-c", "from stepengine.cli import main; main()"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert "complete -o nosort -F _stepengine_completion stepengine" in done.stdout
