"""Progress of a blockwise run: blocks done, voxels/s and ETA, on a terminal or as log lines;
and the Dask dashboard link, announced once per process for each dashboard."""

from __future__ import annotations

import sys
import time

from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

_ANNOUNCED: set[str] = set()


def announce_dashboard(client: object) -> None:
    """Print the client's Dask dashboard link, the first time this process sees that link only:
    a run of many stages (and sub-stages) on one cluster names it once."""
    link = getattr(client, "dashboard_link", None)
    if link and link not in _ANNOUNCED:
        _ANNOUNCED.add(link)
        print(f"Dask dashboard: {link}", file=sys.stderr, flush=True)


def _fmt_rate(vps: float) -> str:
    for unit, scale in (("Gvox/s", 1e9), ("Mvox/s", 1e6), ("kvox/s", 1e3)):
        if vps >= scale:
            return f"{vps / scale:.2f} {unit}"
    return f"{vps:.0f} vox/s"


def _fmt_eta(seconds: float) -> str:
    if seconds != seconds or seconds == float("inf"):
        return "--:--"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}"


class BlockProgress:
    """A rich bar on a terminal; otherwise one line every ``interval`` seconds (logs, CI)."""

    def __init__(self, stage: str, total: int, enabled: bool = True, interval: float = 5.0):
        self.stage, self.total, self.enabled, self.interval = stage, total, enabled, interval
        self.done = self.failed = 0
        self.voxels = 0
        self.start = time.perf_counter()
        self._last_line = self.start
        self._printed_counts: tuple[int, int, int] | None = None  # the counts last printed
        self._bar = None
        if enabled and sys.stderr.isatty():
            self._bar = Progress(
                TextColumn("[bold]{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TextColumn("blocks  {task.fields[rate]}  ETA {task.fields[eta]}"),
                transient=False,
            )
            self._bar.start()
            self._task = self._bar.add_task(stage, total=total, rate="", eta="--:--")

    def line(self) -> str:
        elapsed = time.perf_counter() - self.start
        vps = self.voxels / elapsed if elapsed > 0 else 0.0
        rate_blocks = self.done / elapsed if elapsed > 0 else 0.0
        left = self.total - self.done - self.failed
        eta = left / rate_blocks if rate_blocks > 0 else float("inf")
        pct = 100.0 * self.done / self.total if self.total else 100.0
        failed = f", {self.failed} failed" if self.failed else ""
        return (
            f"{self.stage}: {self.done}/{self.total} blocks ({pct:.0f}%){failed}, "
            f"{_fmt_rate(vps)}, ETA {_fmt_eta(eta)}"
        )

    def update(self, done: int, voxels: int, failed: int = 0) -> None:
        self.done += done
        self.failed += failed
        self.voxels += voxels
        if not self.enabled:
            return
        if self._bar is not None:
            elapsed = time.perf_counter() - self.start
            rate_blocks = self.done / elapsed if elapsed > 0 else 0
            left = self.total - self.done - self.failed
            self._bar.update(
                self._task,
                completed=self.done + self.failed,
                rate=_fmt_rate(self.voxels / elapsed if elapsed > 0 else 0),
                eta=_fmt_eta(left / rate_blocks if rate_blocks else float("inf")),
            )
        elif time.perf_counter() - self._last_line >= self.interval:
            self._last_line = time.perf_counter()
            self._print()

    def _print(self) -> None:
        """The current line, unless it says what the last printed one said (a one-block stage
        that finished after ``interval`` seconds printed its final count already)."""
        counts = (self.done, self.failed, self.total)
        if counts == self._printed_counts:
            return
        self._printed_counts = counts
        print(self.line(), file=sys.stderr, flush=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.stop()
        elif self.enabled:
            self._print()
