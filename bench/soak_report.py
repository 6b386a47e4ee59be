"""Figures of a fosrd soak run (bench/soak.py), as a small table.

:func:`render` turns the facts the soak collected (``run.json``: the
samples, the exit, the ring checks, the packets due per generated second)
into the report.  Run alone it redoes the report from a soak's output
folder: ``.venv/bin/python bench/soak_report.py soak-out``.

How the figures are made:

- *start* is the first sample at least ``warmup_s`` after fosrd answered;
  memory, descriptors and rates are taken from there to the last sample;
- *rate per minute*: packets the sender released (status ``packets``)
  between samples 60 s apart.  At a high speed factor a wall minute spans
  a large part of the model's day, so its rate follows the learned
  time-of-day profile; "vs mean" shows that swing, and "vs due" sets each
  minute against the packets whose timestamps (read from the ring files)
  fall in the generated span of that minute, which is what the daemon is
  asked to hold;
- *RSS growth*: the last sample against the first; and, since the
  resident size rises and falls with every engine batch (a saw-tooth a
  single sample may catch at its top or its bottom), the median and the
  peak of the last third of the samples against those of the first third.
  The peak is the memory the daemon needs; the median also moves with how
  often the allocator hands freed memory back to the system;
- *lag quantiles* are interpolated inside the histogram's buckets (as
  Prometheus' ``histogram_quantile`` does), over the whole run and over
  the first and last thirds of the time after warm-up.
"""

from __future__ import annotations

import json
import math
import statistics
import sys
from pathlib import Path
from typing import Any

__all__ = ["lag_quantile", "render"]

GROWTH_GOAL_PCT = 5.0
LAG_GOAL_S = 1e-3


def lag_quantile(buckets: dict[float, float], q: float) -> float:
    """Return the ``q`` quantile of cumulative ``buckets`` (bound -> count).

    NaN when the histogram is empty; infinity when the quantile lies
    beyond the last finite bound.
    """
    bounds = sorted(buckets)
    total = buckets[bounds[-1]] if bounds else 0.0
    if total <= 0:
        return math.nan
    rank = q * total
    lower, below = 0.0, 0.0
    for bound in bounds:
        count = buckets[bound]
        if count >= rank:
            if math.isinf(bound):
                return math.inf
            inside = count - below
            return lower + (bound - lower) * ((rank - below) / inside if inside else 1)
        lower, below = bound, count
    return math.inf


def _buckets(row: dict[str, Any]) -> dict[float, float]:
    return {
        float(key[len("lag_le_") :]): float(value)
        for key, value in row.items()
        if key.startswith("lag_le_") and value not in ("", None)
    }


def _between(a: dict[str, Any], b: dict[str, Any]) -> dict[float, float]:
    first, last = _buckets(a), _buckets(b)
    return {bound: last[bound] - first.get(bound, 0.0) for bound in last}


def _ms(seconds: float) -> str:
    if math.isnan(seconds):
        return "n/a"
    if math.isinf(seconds):
        return "> 1000 ms"
    return f"{seconds * 1e3:.3f} ms"


def _max_lag(rows: list[dict[str, Any]]) -> float:
    return max((float(r["lag_s"]) for r in rows), default=math.nan)


def _minutes(
    samples: list[dict[str, Any]], per_minute: int, due: dict[int, int]
) -> list[tuple[float, float]]:
    """Return (emitted pps, emitted/due - 1) for every whole minute."""
    out = []
    for i in range(0, len(samples) - per_minute, per_minute):
        a, b = samples[i], samples[i + per_minute]
        emitted = float(b["packets"]) - float(a["packets"])
        dt = float(b["t_s"]) - float(a["t_s"])
        g0, g1 = float(a["generated_time"]), float(b["generated_time"])
        owed = sum(due.get(s, 0) for s in range(math.floor(g0), math.floor(g1)))
        out.append((emitted / dt, emitted / owed - 1 if owed else math.nan))
    return out


def render(facts: dict[str, Any]) -> str:
    """Return the soak's report: a table of figures and goals, then the ring."""
    samples: list[dict[str, Any]] = facts["samples"]
    if len(samples) < 3:
        return "too few samples for a report\n"
    ready = float(facts["ready_s"]) + float(facts["warmup_s"])
    steady = [r for r in samples if float(r["t_s"]) >= ready] or samples[-2:]
    s0, s1 = steady[0], steady[-1]
    span_s = float(s1["t_s"]) - float(s0["t_s"])
    sample_s = (float(samples[-1]["t_s"]) - float(samples[0]["t_s"])) / (
        len(samples) - 1
    )
    per_minute = max(1, round(60 / sample_s))
    due = {int(k): int(v) for k, v in facts["due_per_second"].items()}
    minutes = _minutes(steady, per_minute, due)
    rates = [r for r, _ in minutes]
    mean_rate = sum(rates) / len(rates) if rates else math.nan
    vs_mean = max((abs(r / mean_rate - 1) for r in rates), default=math.nan)
    vs_due = max((abs(d) for _, d in minutes if not math.isnan(d)), default=math.nan)

    rss = [float(r["rss_kib"]) / 1024 for r in steady]
    growth = (rss[-1] / rss[0] - 1) * 100
    # RSS saw-tooths with every engine batch: thirds' medians are steadier
    third = max(1, len(rss) // 3)
    rss_first, rss_last = (
        statistics.median(rss[:third]),
        statistics.median(rss[-third:]),
    )
    growth_medians = (rss_last / rss_first - 1) * 100
    peak_first, peak_last = max(rss[:third]), max(rss[-third:])
    growth_peaks = (peak_last / peak_first - 1) * 100
    thirds = [steady[round(i * (len(steady) - 1) / 3)] for i in range(4)]
    whole = _between(samples[0], samples[-1])
    first, last = _between(thirds[0], thirds[1]), _between(thirds[2], thirds[3])
    p99_first, p99_last = lag_quantile(first, 0.99), lag_quantile(last, 0.99)
    cpu = (float(s1["cpu_s"]) - float(s0["cpu_s"])) / span_s * 100

    ring_ok = sum(ok for _, ok, _ in facts["ring"])
    rotated = facts.get("rotated", [])
    rotated_ok = sum(ok for _, ok in rotated)
    generated_h = float(s1["generated_time"]) - float(samples[0]["generated_time"])
    rows: list[tuple[str, str, str]] = [
        ("wall time (spawn to SIGTERM)", f"{facts['wall_s']:.0f} s", ""),
        (
            "generated time covered",
            f"{generated_h / 3600:.2f} h (speed {facts['speed']:g})",
            "",
        ),
        ("start-up (spawn to control socket)", f"{facts['ready_s']:.1f} s", ""),
        ("packets emitted (status, last sample)", f"{s1['packets']:,}", ""),
        ("packets in the ring files (all read)", f"{facts['ring_packets_read']:,}", ""),
    ]
    if facts.get("veth"):
        rows += [
            ("packets sent on the veth (last sample)", f"{s1['veth_packets']:,}", ""),
            (
                "frames received on the peer (socket)",
                f"{facts['peer_frames']:,}",
                "= ring",
            ),
            (
                "frames received on the peer (link rx)",
                f"{facts['peer_rx_packets']:,}",
                "",
            ),
            ("capture socket drops", f"{facts['peer_socket_drops']:,}", "0"),
        ]
    rows += [
        (
            "rate over the run",
            f"{(float(s1['packets']) - float(s0['packets'])) / span_s:,.0f} pps",
            "",
        ),
        (
            f"per-minute rate: {len(rates)} minutes, mean",
            f"{mean_rate:,.0f} pps",
            "",
        ),
        ("  largest deviation from the mean", f"{vs_mean * 100:.1f} %", "(profile)"),
        ("  largest deviation from packets due", f"{vs_due * 100:.3f} %", "<= 1 %"),
        ("RSS at start (after warm-up)", f"{rss[0]:.1f} MiB", ""),
        ("RSS at end / max", f"{rss[-1]:.1f} / {max(rss):.1f} MiB", ""),
        ("RSS growth, end vs start", f"{growth:+.1f} %", ""),
        (
            "RSS median first / last third",
            f"{rss_first:.1f} / {rss_last:.1f} MiB",
            "",
        ),
        (
            "RSS growth, medians of the thirds",
            f"{growth_medians:+.1f} %",
            f"<= {GROWTH_GOAL_PCT:g} %",
        ),
        (
            "RSS peak first / last third",
            f"{peak_first:.1f} / {peak_last:.1f} MiB",
            "",
        ),
        (
            "RSS growth, peaks of the thirds",
            f"{growth_peaks:+.1f} %",
            f"<= {GROWTH_GOAL_PCT:g} %",
        ),
        ("open fds start / end", f"{s0['fds']:.0f} / {s1['fds']:.0f}", "equal"),
        ("threads start / end", f"{s0['threads']:.0f} / {s1['threads']:.0f}", ""),
        ("fosrd CPU (one core = 100 %)", f"{cpu:.0f} %", ""),
        (
            "lag median / p99, whole run",
            f"{_ms(lag_quantile(whole, 0.5))} / {_ms(lag_quantile(whole, 0.99))}",
            "p99 <= 1 ms",
        ),
        (
            "lag median / p99, first third",
            f"{_ms(lag_quantile(first, 0.5))} / {_ms(p99_first)}",
            "",
        ),
        (
            "lag median / p99, last third",
            f"{_ms(lag_quantile(last, 0.5))} / {_ms(p99_last)}",
            "not growing",
        ),
        (
            "lag in status, max first / last third",
            f"{_max_lag(steady[: len(steady) // 3]):.2f} / "
            f"{_max_lag(steady[-(len(steady) // 3) :]):.2f} s",
            "not growing",
        ),
        ("dropped late (policy)", f"{s1['dropped_late']:,}", "0"),
    ]
    for name in ("ring", "veth"):
        if f"{name}_errors" in s1:
            rows.append(
                (
                    f"{name}: errors / dropped packets",
                    f"{s1[f'{name}_errors']:,} / {s1[f'{name}_dropped']:,}",
                    "0 / 0",
                )
            )
    rows += [
        (
            "ring files finished and checked at rotation",
            f"{rotated_ok}/{len(rotated)} readable",
            "all",
        ),
        (
            "ring files left, capinfos after exit",
            f"{ring_ok}/{len(facts['ring'])} readable",
            "all",
        ),
    ]
    if facts.get("exited_early"):
        rows.append(
            (
                "fosrd exited on its own, exit code",
                f"{facts['exit_code']} after {facts['wall_s']:.0f} s",
                "never",
            )
        )
    else:
        rows.append(
            (
                "SIGTERM to exit / exit code",
                f"{facts['exit_s']:.2f} s / {facts['exit_code']}",
                "< 5 s / 0",
            )
        )
    width = max(len(r[0]) for r in rows)
    vwidth = max(len(r[1]) for r in rows)
    lines = [f"{'figure':<{width}}  {'value':>{vwidth}}  goal"]
    lines += [f"{a:<{width}}  {b:>{vwidth}}  {c}".rstrip() for a, b, c in rows]
    bad = [f"  {n}: {m}" for n, ok, m in facts["ring"] if not ok]
    bad += [f"  {n}: unreadable at rotation" for n, ok in rotated if not ok]
    if bad:
        lines += ["unreadable ring files:", *bad]
    errors = [x for x in facts["final_status_log"].splitlines() if x[:5] == "ERROR"]
    if errors:
        lines += ["", "fosrd's errors (end of its log):", *errors[-5:]]
    lines += ["", f"model: {facts['model']}", f"command: {facts['invocation']}"]
    lines += [f"fosrd: {facts['command']}"]
    return "\n".join(lines) + "\n"


def main() -> None:
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "soak-out")
    facts = json.loads((folder / "run.json").read_text())
    print(render(facts), end="")


if __name__ == "__main__":
    main()
