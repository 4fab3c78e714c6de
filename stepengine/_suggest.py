"""Did-you-mean suggestions for names the user mistyped."""

from __future__ import annotations

import typing as t

from stepengine.errors import short_name

__all__ = ["closest", "did_you_mean"]


def closest(name: str, candidates: t.Iterable[str], n: int = 3) -> list[str]:
    import difflib

    pool = list(dict.fromkeys(candidates))
    tail = short_name(name)
    found = [
        c
        for c in difflib.get_close_matches(name, pool, n=n * 3, cutoff=0.75)
        # dotted names share long prefixes: the last part must look alike too
        if difflib.SequenceMatcher(None, tail, short_name(c)).ratio() >= 0.6
    ][:n]
    if not found and len(name) >= 2:
        found = [c for c in pool if c.startswith(name)][:n]
    if not found:
        # A dotted path whose last part matches a known short name is a good suggestion too.
        found = [c for c in pool if c == tail or c.endswith("." + tail)][:n]
    return found


def did_you_mean(
    name: str, candidates: t.Iterable[str], same: t.Callable[[str], object] | None = None
) -> str:
    """`` (did you mean 'x'?)`` or an empty string. ``same`` maps a candidate to what it names: of
    several names for one thing (a step's aliases), only the closest is offered."""
    if same is None:
        found = closest(name, candidates)
    else:
        seen: set[object] = set()
        found = []
        for candidate in closest(name, candidates, n=12):
            key = same(candidate)
            if key not in seen:
                seen.add(key)
                found.append(candidate)
        found = found[:3]
    if not found:
        return ""
    return " (did you mean " + " or ".join(repr(f) for f in found) + "?)"
