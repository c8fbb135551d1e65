"""What the latency benches share: their options and one worker run per mode."""

from __future__ import annotations

import argparse
import random
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

# measure(mode, count, poll seconds, Notion rate, a fresh folder) -> latencies in seconds
Measure = Callable[[str, int, float, float, Path], list[float]]


def options(doc: str, count: str, seed: int) -> argparse.Namespace:
    """`--<count>` (how many tries), `--poll`, `--rate` and `--seed`; the seed is applied."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument(f"--{count}", type=int, default=10, dest="count")
    parser.add_argument("--poll", type=float, default=10.0, help="NFACTORY_POLL_SECONDS")
    parser.add_argument("--rate", type=float, default=3.0, help="Notion requests/s; 0 = off")
    parser.add_argument("--seed", type=int, default=seed)
    opts = parser.parse_args()
    random.seed(opts.seed)
    return opts


def per_mode(
    modes: Sequence[str], measure: Measure, opts: argparse.Namespace
) -> dict[str, list[float]]:
    """Each mode measured in a folder of its own, in order."""
    results: dict[str, list[float]] = {}
    with tempfile.TemporaryDirectory(prefix="nfactory-bench-") as tmp:
        for mode in modes:
            folder = Path(tmp) / mode
            folder.mkdir()
            results[mode] = measure(mode, opts.count, opts.poll, opts.rate, folder)
    return results
