"""Throughput and p99 latency against the offered rate, as a PNG beside a bench's JSON.

matplotlib comes from bench/requirements.txt (the bench's environment, not the package's):
without it the bench still prints and saves its figures, and says that it drew nothing.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def rates(
    path: Path,
    title: str,
    series: dict[str, list[dict[str, Any]]],
    ceilings: dict[str, float] | None = None,
) -> Path | None:
    """`series` maps a label to a bench's steps (`offered_per_s`, `achieved_per_s`,
    `latency_ms.p99`); `ceilings` are horizontal lines on the throughput axis (floors)."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("matplotlib is not installed (pip install -r bench/requirements.txt): no plot")
        return None
    fig, (top, bottom) = plt.subplots(2, 1, figsize=(8, 8), sharex=True)
    for label, steps in series.items():
        offered = [s["offered_per_s"] for s in steps]
        top.plot(offered, [s["achieved_per_s"] for s in steps], marker="o", label=label)
        bottom.plot(offered, [s["latency_ms"]["p99"] for s in steps], marker="o", label=label)
    top_rate = max((s["offered_per_s"] for steps in series.values() for s in steps), default=1)
    top.plot([0, top_rate], [0, top_rate], color="grey", linestyle=":", label="offered")
    for n, (label, value) in enumerate((ceilings or {}).items()):
        top.axhline(value, linestyle="--", linewidth=1, label=label, color=f"C{3 + n}")
    top.set_ylabel("answered per second")
    top.set_title(title)
    top.legend(fontsize="small")
    top.grid(alpha=0.3)
    bottom.set_yscale("log")
    bottom.set_ylabel("p99 latency (ms, log)")
    bottom.set_xlabel("offered per second")
    bottom.axhline(50, color="grey", linestyle=":", linewidth=1, label="50 ms")
    bottom.legend(fontsize="small")
    bottom.grid(alpha=0.3, which="both")
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
