"""``run_shell_script``: run commands, line by line (Prefect's behaviour) or as one bash script."""

from __future__ import annotations

import os
import re
import string
import typing as t

from stepengine.step_api import StepError, run_process


def run_shell_script(
    script: str,
    directory: str | None = None,
    env: dict[str, str] | None = None,
    stream_output: bool = True,
    expand_env_vars: bool = False,
    shell: bool = False,
    venv: str | None = None,
) -> dict[str, str]:
    """Run a script and return its ``stdout`` and ``stderr`` (stripped).

    Without ``shell``, each non-blank line is its own process, split into words like a shell would
    (no pipes, redirects or variables: Prefect's behaviour); with ``shell: true`` the whole script runs
    in one ``bash -e`` process. ``env`` is merged over the current environment; ``expand_env_vars``
    expands ``$X`` / ``${X}`` in each line first. A non-zero exit fails the step with the
    exit code and the end of stderr; output streams live.

    ``venv`` (a virtualenv or a conda prefix, relative to ``directory``) runs the script with that
    environment's ``bin`` first on ``PATH`` and ``VIRTUAL_ENV`` set, as if it were activated.
    """
    current_env = dict(os.environ)
    current_env.update({str(k): "" if v is None else str(v) for k, v in (env or {}).items()})
    cwd = os.path.expanduser(directory) if directory else None
    if cwd is not None and not os.path.isdir(cwd):
        raise StepError(f"directory {directory!r} does not exist")
    if venv is not None:
        _activate(current_env, os.path.join(cwd or os.getcwd(), os.path.expanduser(venv)), venv)
    if shell:
        text = _expand(script, current_env) if expand_env_vars else script
        result = run_process(
            ["bash", "-e", "-c", text], cwd=cwd, env=current_env, stream_output=stream_output
        )
        return {"stdout": result.stdout.strip(), "stderr": result.stderr.strip()}
    stdout: list[str] = []
    stderr: list[str] = []
    for number, line in enumerate(script.splitlines(), start=1):
        command = _expand(line, current_env) if expand_env_vars else line
        try:
            argv = split_words(command)
        except ValueError as exc:
            raise StepError(f"line {number} of the script cannot be split into words: {exc}") from None
        if not argv:
            continue
        result = run_process(argv, cwd=cwd, env=current_env, stream_output=stream_output)
        stdout.append(result.stdout)
        stderr.append(result.stderr)
    return {"stdout": "".join(stdout).strip(), "stderr": "".join(stderr).strip()}


#: one piece of a word, as POSIX shlex reads it: blanks, a '…' or "…" string, a backslash escape, plain
#: characters, or a quote/backslash that starts nothing complete. Each alternative is linear (no
#: backtracking between them), so a 2 MB line splits in milliseconds.
_PIECE = re.compile(
    r"(?P<blank>[ \t\r\n]+)"
    r"|'(?P<single>[^']*)'"
    r'|"(?P<double>[^"\\]*(?:\\.[^"\\]*)*)"'
    r"|\\(?P<escaped>.)"
    r"""|(?P<plain>[^ \t\r\n'"\\]+)"""
    r"""|(?P<open>['"])"""
    r"|(?P<dangling>\\)",
    re.DOTALL,
)
_DOUBLE_ESCAPE = re.compile(r'\\(["\\])')


def split_words(line: str) -> list[str]:
    """``shlex.split(line, comments=False)``, in time linear in the line.

    ``shlex`` grows each word one character at a time (quadratic: a 2 MB line took over 30 s,
    issue 14). Same rules: blanks separate words; ``'…'`` is literal; inside ``"…"`` a backslash
    escapes only ``"`` and ``\\``; elsewhere it escapes any character; an unclosed quote or a final
    backslash is a ``ValueError`` with shlex's message.
    """
    words: list[str] = []
    parts: list[str] = []
    in_word = False
    for match in _PIECE.finditer(line):
        kind = t.cast(str, match.lastgroup)  # every alternative of _PIECE is a named group
        if kind == "blank":
            if in_word:
                words.append("".join(parts))
                parts, in_word = [], False
            continue
        if kind == "open":
            rest = line[match.end() :]
            # inside an unclosed "…", shlex ends in its escape state when a backslash is last
            trailing = len(rest) - len(rest.rstrip("\\"))
            if match.group(kind) == '"' and trailing % 2:
                raise ValueError("No escaped character")
            raise ValueError("No closing quotation")
        if kind == "dangling":
            raise ValueError("No escaped character")
        text = match.group(kind)
        parts.append(_DOUBLE_ESCAPE.sub(r"\1", text) if kind == "double" and "\\" in text else text)
        in_word = True
    if in_word:
        words.append("".join(parts))
    return words


def _activate(env: dict[str, str], root: str, given: str) -> None:
    """What ``source bin/activate`` does to the environment (conda: ``CONDA_PREFIX`` too)."""
    root = os.path.abspath(root)
    bin_dir = os.path.join(root, "bin")
    if not os.path.isdir(bin_dir):
        raise StepError(f"venv {given!r} is not a virtual environment or conda prefix (no bin/ in {root})")
    env["PATH"] = bin_dir + os.pathsep + env.get("PATH", os.defpath)
    env.pop("PYTHONHOME", None)
    if os.path.isdir(os.path.join(root, "conda-meta")):
        env["CONDA_PREFIX"] = root
        env.pop("VIRTUAL_ENV", None)
    else:
        env["VIRTUAL_ENV"] = root


def _expand(text: str, env: t.Mapping[str, str]) -> str:
    # Prefect's expansion exactly: $X and ${X} of the environment, unknown names left as they are
    return string.Template(text).safe_substitute(env)
