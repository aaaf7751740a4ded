"""Figures out: one line per run on the terminal, the JSON file, the chart, a Markdown table.

``python -m bench.report FILE.json [...]`` prints the Markdown table of the README from
one or more result files (runs of different sizes or databases merged).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

STAGES = ("assemble", "render", "queue", "send")


def header() -> str:
    return (
        f"{'database':<10} {'provider':<8} {'size':>9}  "
        f"{'assemble':>8} {'render':>7} {'queue':>7} {'send':>7}  "
        f"{'rcpt/s':>8} {'µs/rcpt':>7} {'RSS MB':>6} {'requests':>8} "
        f"{'peer CPU':>8} {'events/s':>9}  exactly once"
    )


def line(result: dict[str, Any]) -> str:
    """One line of figures: seconds per stage, rate, memory, requests, the peer's CPU, and
    the webhook's events per second after a SendGrid run."""
    s = result["seconds"]
    unit = "HTTP" if result["provider"] == "sendgrid" else "SMTP"
    once = "yes" if result["exactly_once"] else "NO: " + "; ".join(result["problems"])
    return (
        f"{result['database']:<10} {result['provider']:<8} {result['size']:>9,}  "
        f"{s['assemble']:>7.2f}s {s['render']:>6.2f}s {s['queue']:>6.2f}s {s['send']:>6.2f}s  "
        f"{result['recipients_per_second']:>8,.0f} {result['microseconds_per_recipient']:>7.1f} "
        f"{result['peak_rss_mb']:>6.0f} {result['requests']:>8,} {unit} "
        f"{result['peer_cpu_seconds']:>6.1f}s {_events_rate(result):>9}  {once}"
    )


def _events_rate(result: dict[str, Any]) -> str:
    """Webhook events applied per second (SendGrid runs), or a dash."""
    events = result.get("events")
    return f"{events['events_per_second']:,.0f}" if events else "-"


def write_json(results: list[dict[str, Any]], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")


def write_chart(results: list[dict[str, Any]], path: Path) -> None:
    """Recipients per second and peak RSS against N, one line per database/provider."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    series: dict[str, list[dict[str, Any]]] = {}
    for result in results:
        series.setdefault(f"{result['provider']} / {result['database']}", []).append(result)
    figure, (rate_axes, rss_axes) = plt.subplots(1, 2, figsize=(11, 4.2))
    for label, points in sorted(series.items()):
        points.sort(key=lambda r: r["size"])
        sizes = [p["size"] for p in points]
        rate_axes.plot(sizes, [p["recipients_per_second"] for p in points], "o-", label=label)
        rss_axes.plot(sizes, [p["peak_rss_mb"] for p in points], "o-", label=label)
    rate_axes.set_title("Recipients per second, end to end")
    rss_axes.set_title("Peak RSS of the sending process (MB)")
    for axes in (rate_axes, rss_axes):
        axes.set_xscale("log")
        axes.set_xlabel("subscribers (N)")
        axes.grid(True, which="both", alpha=0.3)
        axes.set_ylim(bottom=0)
        axes.legend(fontsize="small")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    figure.savefig(path, dpi=110)
    plt.close(figure)


def markdown(results: list[dict[str, Any]]) -> str:
    """The README's table: one row per run, the targets' figures first."""
    rows = [
        "| database | provider | N | assemble s | render s | queue s | send s | queue+send s "
        "| rcpt/s end to end | peak RSS MB | requests | peer CPU s | events/s | load avg "
        "| exactly once |",
        "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|---|",
    ]
    order = {"sqlite": 0, "postgresql": 1, "sendgrid": 0, "smtp": 1}
    for r in sorted(results, key=lambda r: (order[r["database"]], order[r["provider"]], r["size"])):
        s = r["seconds"]
        rows.append(
            f"| {r['database']} | {r['provider']} | {r['size']:,} | {s['assemble']:.2f} "
            f"| {s['render']:.2f} | {s['queue']:.2f} | {s['send']:.2f} "
            f"| {r['queue_send_seconds']:.1f} | {r['recipients_per_second']:,.0f} "
            f"| {r['peak_rss_mb']:.0f} | {r['requests']:,} | {r['peer_cpu_seconds']:.1f} "
            f"| {_events_rate(r)} | {r.get('load_average_after', 0):.1f} "
            f"| {'yes' if r['exactly_once'] else 'NO'} |"
        )
    return "\n".join(rows)


if __name__ == "__main__":
    merged: list[dict[str, Any]] = []
    for name in sys.argv[1:]:
        merged.extend(json.loads(Path(name).read_text(encoding="utf-8")))
    print(markdown(merged))
