"""Report: the tables, derived numbers and notes of a run, the marked section of RESULTS.md, the plot."""

from __future__ import annotations

import contextlib
import datetime
import os
import platform
import statistics
import subprocess
from pathlib import Path

from benchmarks.environments import log, versions
from benchmarks.measurement import Result, Sample
from benchmarks.scenarios.context import Context

MARK_START = "<!-- results:start (written by benchmarks/run.py; edit outside these marks) -->"
MARK_END = "<!-- results:end -->"


def format_ms(seconds: float) -> str:
    ms = seconds * 1000
    return f"{ms:.0f} ms" if ms >= 100 else f"{ms:.1f} ms"


def summary(samples: list[Sample], rss: bool) -> str:
    if not samples:
        return "–"
    if rss:
        values = [s.max_rss_kb / 1024 for s in samples]
        return f"{statistics.median(values):.1f} MB ({min(values):.1f}–{max(values):.1f})"
    values = [s.seconds for s in samples]
    return f"{format_ms(statistics.median(values))} ({format_ms(min(values))}–{format_ms(max(values))}, n={len(values)})"


def median(samples: list[Sample], rss: bool) -> float:
    return statistics.median([s.max_rss_kb if rss else s.seconds for s in samples])


def ratio(result: Result) -> float | None:
    """Prefect ÷ stepengine of the medians (for RSS: stepengine ÷ Prefect, lower is better)."""
    a, b = result.scenario.pair
    if not result.samples.get(a) or not result.samples.get(b):
        return None
    if result.scenario.rss:
        return median(result.samples[b], True) / median(result.samples[a], True)
    return median(result.samples[a], False) / median(result.samples[b], False)


def _verdict(result: Result, value: float | None) -> str:
    target = result.scenario.target
    if value is None or target is None:
        return "–"
    if result.scenario.rss:
        return f"≤ 1/{target:g}: " + ("met" if value <= 1 / target else "**missed**")
    return f"≥ {target:g}×: " + ("met" if value >= target else "**missed**")


def machine() -> list[str]:
    cpu = "?"
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = "?"
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    git = subprocess.run(["git", "--version"], capture_output=True, text=True, check=False).stdout.strip()
    return [
        f"- date: {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC",
        f"- machine: {platform.system()} {platform.release()}, {os.cpu_count()} CPUs ({cpu}), {mem} RAM",
        f"- load average at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())} (the machine is shared)",
        f"- Python {platform.python_version()}, {git}",
    ]


def report(results: list[Result], skipped: dict[str, str], ctx: Context, rounds: int) -> str:
    lines = [MARK_START, "", "### Machine", ""]
    lines += machine()
    lines += [
        f"- stepengine venv: {versions(ctx.stepengine_python, ['stepengine', 'PyYAML', 'click', 'Jinja2', 'jsonschema'])}",
        f"- Prefect venv: {versions(ctx.prefect_python, ['prefect', 'prefect-docker', 's3fs', 'fastapi'])}",
        (
            f"- rounds: {rounds} by default (n = runs per engine in each cell), engines alternating, one untimed "
            "warm-up each; bytecode compiled in both venvs"
        ),
        "",
        "### Results (median, min–max)",
        "",
        "| scenario | stepengine | Prefect | Prefect ÷ stepengine | target |",
        "| --- | --- | --- | --- | --- |",
    ]
    for result in results:
        value = ratio(result)
        sc = result.scenario
        shown = "–" if value is None else (f"{value:.2f} of Prefect's" if sc.rss else f"**{value:.1f}×**")
        lines.append(
            f"| {sc.title} | {summary(result.samples.get('stepengine', []), sc.rss)} | "
            f"{summary(result.samples.get('prefect', []), sc.rss)} | {shown} | {_verdict(result, value)} |"
        )
    others = [(r, label) for r in results for label in r.samples if label not in ("stepengine", "prefect")]
    if others:
        lines += [
            "",
            "### Floors and variants",
            "",
            "| scenario | run | median (min–max) |",
            "| --- | --- | --- |",
        ]
        for result, label in others:
            lines.append(
                f"| {result.scenario.title} | {label} | {summary(result.samples[label], result.scenario.rss)} |"
            )
    derived = _derived(results)
    if derived:
        lines += ["", "### Derived", ""] + derived
    lines += ["", "### Scenarios", ""]
    for result in results:
        load = f" Load average (1 min): {result.load[0]:.1f} → {result.load[1]:.1f}." if result.load else ""
        lines.append(f"- **{result.scenario.title}**: {result.scenario.note}{load}")
        if result.error:
            lines.append(f"  - FAILED: `{result.error.splitlines()[0]}`")
    for key, why in skipped.items():
        lines.append(f"- **{key}**: skipped: {why}")
    lines += ["", MARK_END]
    return "\n".join(lines)


def _derived(results: list[Result]) -> list[str]:
    by_key = {r.scenario.key: r for r in results}
    out = []
    cold, chain = by_key.get("cold"), by_key.get("chain")
    if cold and chain:
        steps = int(chain.scenario.title.split()[1])
        for engine in ("stepengine", "prefect"):
            if cold.samples.get(engine) and chain.samples.get(engine) and steps > 1:
                per = (median(chain.samples[engine], False) - median(cold.samples[engine], False)) / (
                    steps - 1
                )
                cpu = (
                    statistics.median(s.cpu_seconds for s in chain.samples[engine])
                    - statistics.median(s.cpu_seconds for s in cold.samples[engine])
                ) / (steps - 1)
                out.append(
                    f"- {engine}: {per * 1000:.3f} ms wall, {cpu * 1000:.3f} ms CPU per chained step "
                    f"(chain minus 1-step cold run, ÷ {steps - 1})"
                )
    validate = by_key.get("validate")
    if validate and len(validate.samples) == 2 and all(validate.samples.values()):
        (big, big_samples), (small, small_samples) = validate.samples.items()
        wall = median(big_samples, False) / median(small_samples, False)
        cpu = statistics.median(s.cpu_seconds for s in big_samples) / statistics.median(
            s.cpu_seconds for s in small_samples
        )
        scale = validate.scenario.title.split(", ")[1]
        out.append(
            f"- validate, {scale} ÷ {small.split(', ')[1]}: {wall:.1f}× wall, {cpu:.1f}× CPU (linear: 10×); "
            f"CPU time {format_ms(statistics.median(s.cpu_seconds for s in big_samples))}"
        )
    for result in results:
        if "-concurrent-" in result.scenario.key:
            count = int(result.scenario.key.rsplit("-", 1)[1])
            rates = ", ".join(
                f"{label.split(':')[0]} {count / median(samples, False):.2f}"
                for label, samples in result.samples.items()
                if samples
            )
            line = f"- {result.scenario.title}, runs/s: {rates}"
            floors = [label for label in result.samples if not label.startswith("stepengine")]
            ours = result.samples.get("stepengine")
            if floors and ours and result.samples[floors[0]]:
                # above 1: stepengine keeps up with the floor (plain git, the least an S3 client does)
                pace = median(result.samples[floors[0]], False) / median(ours, False)
                line += f"; stepengine's pace = {pace:.2f}× {floors[0].split(':')[0]}'s"
            out.append(line)
        if result.scenario.key.startswith("git"):
            # CPU time (the process and the git processes it waited for) moves less than wall time
            # when the machine is shared
            cpu = ", ".join(
                f"{label} {format_ms(statistics.median(s.cpu_seconds for s in samples))}"
                for label, samples in result.samples.items()
                if samples
            )
            out.append(f"- {result.scenario.title}, CPU time (user + system, median): {cpu}")
    if cold and cold.samples.get("stepengine") and cold.samples.get("python -c pass"):
        x = median(cold.samples["stepengine"], False) / median(cold.samples["python -c pass"], False)
        out.append(f"- stepengine cold run = {x:.1f}× a bare `python -c pass` (wall time)")
    if cold:
        cpu = {
            label: statistics.median(s.cpu_seconds for s in samples)
            for label, samples in cold.samples.items()
            if samples
        }
        shown = ", ".join(f"{label} {format_ms(value)}" for label, value in cpu.items())
        out.append(f"- cold runs, CPU time (user + system, median): {shown}")
        if cpu.get("stepengine") and cpu.get("python -c pass"):
            out.append(
                f"- stepengine cold run = {cpu['stepengine'] / cpu['python -c pass']:.1f}× a bare `python -c pass` (CPU time)"
            )
        if cpu.get("stepengine") and cpu.get("prefect"):
            out.append(
                f"- Prefect ÷ stepengine, cold run CPU time: {cpu['prefect'] / cpu['stepengine']:.1f}×"
            )
    return out


def write_results(path: Path, section: str) -> None:
    """Replace the marked section of ``path`` (keeping the hand-written findings around it)."""
    text = path.read_text(encoding="utf-8") if path.exists() else "# Benchmarks\n\n"
    if MARK_START in text and MARK_END in text:
        head, rest = text.split(MARK_START, 1)
        tail = rest.split(MARK_END, 1)[1]
        text = head + section + tail
    else:
        text = text.rstrip("\n") + "\n\n" + section + "\n"
    path.write_text(text, encoding="utf-8")


def plot(results: list[Result], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        log("matplotlib is not installed: no plot")
        return False
    rows = [(r.scenario.title, ratio(r), r.scenario.target, r.scenario.rss) for r in results]
    rows = [(title, 1 / v if rss else v, target) for title, v, target, rss in rows if v]
    if not rows:
        return False
    fig, ax = plt.subplots(figsize=(8, 0.5 * len(rows) + 1.2))
    labels = [r[0] for r in rows]
    ax.barh(labels, [r[1] for r in rows], color="#4477aa")
    for i, (_, _, target) in enumerate(rows):
        if target:
            ax.plot([target, target], [i - 0.4, i + 0.4], color="#cc3311")
    ax.set_xscale("log")
    ax.invert_yaxis()
    ax.set_xlabel("Prefect ÷ stepengine (median; RSS: Prefect's ÷ ours); red: target")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return True
