"""``stepengine run`` without click, for the command line a worker runs thousands of times.

Importing click is about a sixth of a cold ``stepengine run`` (~10 ms of ~60 ms). ``parse_run``
recognises the plain forms of ``run``'s command line and returns exactly the parameters click would
have parsed; for anything else (another verb, help, a short-option cluster, ``--``, an option it does
not know, a value that click would reject or that looks like an option) it returns None and the click
group parses the line, so every usage message, help text and error stays click's. Both parsers are
built from one declaration, ``_table.RUN``; ``tests/cli/test_fastpath.py`` checks with hypothesis
that whenever this parser answers, click's answer is the same.
"""

from __future__ import annotations

import os
import typing as t

from stepengine.cli._run import DEFAULTS, split_var
from stepengine.cli._table import RUN

#: options taking a value: spelling → (parameter, accepted values or None for any, repeatable)
_VALUED: dict[str, tuple[str, tuple[str, ...] | None, bool]] = {
    name: (option.dest, option.choices or None, option.multiple)
    for option in RUN
    if option.fast and not option.flag
    for name in option.names
}

#: flags: spelling → parameter
_FLAGS: dict[str, str] = {
    name: option.dest for option in RUN if option.fast and option.flag for name in option.names
}

#: parameters that are ``click.Path(dir_okay=False)``: click rejects an existing directory
_FILE_PARAMS = tuple(option.dest for option in RUN if option.kind in ("file", "existing-file"))

#: parameters holding ``KEY=VALUE`` pairs, which click checks
_PAIRS = tuple(option.dest for option in RUN if option.kind == "pairs")


def parse_run(argv: t.Sequence[str]) -> dict[str, t.Any] | None:
    """``run_command``'s keyword arguments for ``argv`` (without the program name), or None."""
    if not argv or argv[0] != "run":
        return None
    params: dict[str, t.Any] = dict(DEFAULTS)
    repeated: dict[str, list[str]] = {}
    file: str | None = None
    rest = list(argv[1:])
    while rest:
        token = rest.pop(0)
        if token in _FLAGS:
            params[_FLAGS[token]] = True
            continue
        name, sep, value = token.partition("=") if token.startswith("--") else (token, "", "")
        if name in _VALUED:
            if not sep:
                if not rest:
                    return None
                value = rest.pop(0)
            param, choices, many = _VALUED[name]
            if not _plain(value) or (choices is not None and value not in choices):
                return None
            if param in _PAIRS and split_var(value) is None:
                return None
            if many:
                repeated.setdefault(param, []).append(value)
            else:
                params[param] = value  # the last one wins, as in click
            continue
        if token.startswith("-") or file is not None or not token:
            return None  # an unknown option, a cluster such as -qv, "--", or a second argument
        file = token
    if file is not None:
        params["file"] = file
    for param, values in repeated.items():
        params[param] = tuple(values)
    if any(params[p] is not None and (params[p] == "" or os.path.isdir(params[p])) for p in _FILE_PARAMS):
        return None
    return params


def _plain(value: str) -> bool:
    """A value click takes as it is (one that starts with ``-`` is left to click to judge)."""
    return not value.startswith("-")
