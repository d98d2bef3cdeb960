"""The blockwise runner: any stage becomes bounded, resumable Dask work.

Blocks are enumerated lazily and run in groups of consecutive ids (one Dask task per group), so
the scheduler sees a bounded number of tasks however many blocks the volume has, and a Dask task's
millisecond overhead is shared by many cheap blocks. At most ``max_in_flight`` groups are
submitted at once; the client keeps nothing per block. A group's blocks are marked done (one
bitmap file per group, see ``done_markers``) only after the stage wrote them, so a rerun skips
finished blocks and a killed run loses only unfinished work.
"""

from __future__ import annotations

import math
import pickle
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import Client, default_client, wait

from pipeline.errors import BlockFailures, ClusterError, InputError
from pipeline.geometry import Coord, Roi, as_coord
from pipeline.runner.done import DoneMarkers, read_group, write_group
from pipeline.runner.grid import Block, BlockGrid
from pipeline.runner.progress import BlockProgress, announce_dashboard

__all__ = [
    "Block",
    "BlockGrid",
    "BlockTask",
    "RunReport",
    "auto_group_size",
    "run_blockwise",
    "workers_offering",
]

MAX_GROUP = 1024
TARGET_GROUPS = 1000


@dataclass
class BlockTask:
    """A stage as a function of one block (see ARCHITECTURE.md, "Block tasks")."""

    name: str
    total_roi: Roi
    block_shape: Coord
    process: Callable[[Block], Any]
    done_url: str
    context: Coord = (0, 0, 0)
    params: dict[str, Any] = field(default_factory=dict)
    read_bounds: Roi | None = None
    edge: str = "clip"
    voxel_size: Coord = (1, 1, 1)
    write_grid: Coord | None = None  # nm; block_shape must be a multiple (output chunks/shards)
    grid_origin: Coord | None = None  # nm; where the output's chunk grid starts (its offset)
    resources: dict[str, float] | None = None
    blocks_per_task: int | None = None
    max_retries: int = 2
    timeout_s: float | None = None

    def grid(self) -> BlockGrid:
        return BlockGrid(
            self.total_roi, self.block_shape, self.context, self.read_bounds, self.edge
        )


@dataclass
class RunReport:
    stage: str
    blocks_total: int
    blocks_run: int
    blocks_skipped: int
    failed: list[int]
    seconds: float
    voxels_per_s: float
    markers: str

    def as_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def auto_group_size(num_blocks: int) -> int:
    """About ``TARGET_GROUPS`` tasks per stage, at most ``MAX_GROUP`` blocks per task. Depends on
    the grid only (never on the cluster), so done markers stay valid on another cluster."""
    return max(1, min(MAX_GROUP, math.ceil(num_blocks / TARGET_GROUPS)))


# ---------------------------------------------------------------------------------------------
# worker side


def run_group(
    process: Callable[[Block], Any],
    grid: BlockGrid,
    ids: list[int] | range,
    group_url: str,
    group_start: int,
    group_len: int,
    retries: int,
) -> tuple[int, int, list[tuple[int, str]]]:
    """Run some blocks of one group, retrying each up to ``retries`` times in place, then record
    the finished ones in the group's marker. Returns (blocks done, voxels done, failures)."""
    done = read_group(group_url, group_len)
    voxels, failures, newly = 0, [], 0
    for block_id in ids:
        block = grid.block(block_id)
        error = None
        for _attempt in range(retries + 1):
            try:
                process(block)
                error = None
                break
            except Exception as e:  # noqa: BLE001 - reported with the block id
                error = f"{e.__class__.__name__}: {e}\n{traceback.format_exc(limit=4)}"
        if error is None:
            done[block_id - group_start] = True
            newly += 1
            voxels += block.write_roi.size
        else:
            failures.append((block_id, error))
    if newly:
        write_group(group_url, done)
    return newly, voxels, failures


def _noop_check() -> None:
    return None


# ---------------------------------------------------------------------------------------------
# client side


def _validate(task: BlockTask) -> BlockGrid:
    nd = task.total_roi.ndim
    block_shape = as_coord(task.block_shape, nd)
    if any(b <= 0 for b in block_shape):
        raise InputError(f"stage '{task.name}': block shape {block_shape} must be positive")
    vs = as_coord(task.voxel_size, nd)
    for what, value in (("block shape", block_shape), ("context", as_coord(task.context, nd))):
        if any(v % s for v, s in zip(value, vs, strict=True)):
            raise InputError(
                f"stage '{task.name}': {what} {value} nm is not a multiple of the voxel size {vs} nm"
            )
    if task.write_grid is not None:
        wg = as_coord(task.write_grid, nd)
        if any(b % g for b, g in zip(block_shape, wg, strict=True)):
            raise InputError(
                f"stage '{task.name}': block shape {block_shape} nm is not a multiple of the "
                f"output's chunk/shard grid {wg} nm, so two blocks would write one chunk; "
                f"use a multiple such as {tuple(math.ceil(b / g) * g for b, g in zip(block_shape, wg, strict=True))}"
            )
        origin = as_coord(task.grid_origin or (0,) * nd, nd)
        if any((b - o) % g for b, o, g in zip(task.total_roi.begin, origin, wg, strict=True)):
            raise InputError(
                f"stage '{task.name}': the ROI {task.total_roi} does not start on the output's "
                f"chunk grid {wg} nm; snap it with Roi.snap_to_grid"
            )
    if task.read_bounds is not None and not task.read_bounds.contains(task.total_roi):
        if task.edge == "clip":
            raise InputError(
                f"stage '{task.name}': the ROI {task.total_roi} lies outside the input {task.read_bounds}"
            )
    return task.grid()


RESOURCE_WAIT_S = 10.0


def workers_offering(client: Client, resources: dict[str, float]) -> tuple[int, int]:
    """(workers that offer every resource in ``resources``, all workers) of the client's
    cluster."""
    workers = client.scheduler_info(n_workers=-1).get("workers", {})
    offering = [
        w
        for w in workers.values()
        if all(w.get("resources", {}).get(k, 0) >= v for k, v in resources.items())
    ]
    return len(offering), len(workers)


def _check_resources(client: Client, task: BlockTask, wait_s: float | None = None) -> None:
    if not task.resources:
        return
    deadline = time.time() + (RESOURCE_WAIT_S if wait_s is None else wait_s)
    while True:
        offering, workers = workers_offering(client, task.resources)
        if offering:
            return
        if time.time() > deadline:
            need = ", ".join(f"{k}={v}" for k, v in task.resources.items())
            raise ClusterError(
                f"stage '{task.name}' needs workers with resources {need}, but none of the "
                f"{workers} worker(s) offers them; start workers with `dask worker ... "
                f"--resources {need.replace(', ', ',')}` or run the stage without them"
            )
        time.sleep(0.5)


def current_client() -> Client:
    """The Dask client the caller opened (``distributed.default_client``): the runner receives
    a client and never starts one."""
    try:
        return default_client()
    except ValueError:
        raise ClusterError(
            "no Dask client: open one (`with cluster.open_client(spec) as client:`) and pass it "
            "as client=..."
        ) from None


def run_blockwise(
    task: BlockTask,
    client: Client | None = None,
    progress: bool = True,
    max_in_flight: int | None = None,
) -> RunReport:
    """Run ``task`` over its ROI. Raises ``BlockFailures`` naming the blocks that still failed
    after retries (they stay unmarked); returns a report otherwise."""
    t0 = time.perf_counter()
    grid = _validate(task)
    n = grid.num_blocks
    group_size = task.blocks_per_task or auto_group_size(n)
    payload = {
        "params": task.params,
        "total_roi": [list(task.total_roi.begin), list(task.total_roi.shape)],
        "block_shape": list(grid.block_shape),
        "context": list(grid.context),
        "edge": task.edge,
    }
    markers = DoneMarkers(task.done_url, task.name, payload, group_size)
    if n == 0 or markers.is_complete():
        if progress:
            print(f"{task.name}: all {n} blocks already done ({markers.url})", file=sys.stderr)
        return _report(task, grid, markers, t0, GroupTally(skipped=n))
    markers.prepare(n)

    client = client if client is not None else current_client()
    _check_resources(client, task)
    if progress:
        announce_dashboard(client)
    if max_in_flight is None:
        threads = sum(client.nthreads().values()) or 1
        max_in_flight = max(8, 4 * threads)
    groups = GroupScheduler(task, client, grid, markers, group_size, progress)
    tally = groups.run(max_in_flight)
    if tally.failed_count:
        markers.clear_complete()
        raise BlockFailures(task.name, tally.failed_ids, tally.failed_count, tally.errors)
    markers.mark_complete(n)
    return _report(task, grid, markers, t0, tally)


def _report(
    task: BlockTask, grid: BlockGrid, markers: DoneMarkers, t0: float, tally: GroupTally
) -> RunReport:
    secs = time.perf_counter() - t0
    voxel = math.prod(as_coord(task.voxel_size, grid.total_roi.ndim))
    return RunReport(
        task.name,
        grid.num_blocks,
        tally.run,
        tally.skipped,
        [],
        secs,
        tally.voxels / voxel / secs if secs else 0.0,
        markers.url,
    )


@dataclass
class GroupTally:
    """What a run did: blocks run and skipped, voxels written, and the blocks that failed (the
    first ``KEEP_FAILED`` ids and ``KEEP_ERRORS`` messages are kept; the count is exact)."""

    run: int = 0
    skipped: int = 0
    voxels: int = 0
    failed_count: int = 0
    failed_ids: list[int] = field(default_factory=list)
    errors: dict[int, str] = field(default_factory=dict)

    def add_failures(self, fails: list[tuple[int, str]]) -> None:
        for block_id, err in fails:
            self.failed_count += 1
            if len(self.failed_ids) < KEEP_FAILED:
                self.failed_ids.append(block_id)
            if len(self.errors) < KEEP_ERRORS:
                self.errors[block_id] = err


KEEP_FAILED = 1000
KEEP_ERRORS = 5


@dataclass
class Attempt:
    """One submitted try at the unfinished blocks of a group (kept while it is in flight)."""

    group: int
    ids: list[int] | range
    number: int
    started: float


class GroupScheduler:
    """The client side of a run: submits the unfinished blocks of each group as one task, at
    most ``max_in_flight`` at once; collects what finished; resubmits a group whose task died
    or timed out (up to ``max_retries`` times) and counts the rest as failed."""

    def __init__(
        self,
        task: BlockTask,
        client,
        grid: BlockGrid,
        markers: DoneMarkers,
        group_size: int,
        progress: bool,
    ):
        self.task, self.client, self.grid, self.markers = task, client, grid, markers
        self.group_size = group_size
        self.n = grid.num_blocks
        self.bar = BlockProgress(task.name, self.n, enabled=progress)
        self.process = (
            client.scatter(task.process, broadcast=False, hash=False)
            if _large(task.process)
            else task.process
        )
        self.tally = GroupTally()
        self.in_flight: dict[Any, Attempt] = {}
        self.last_resource_check = time.perf_counter()

    def run(self, max_in_flight: int) -> GroupTally:
        try:
            for group in range(math.ceil(self.n / self.group_size)):
                ids = self.unfinished(group)
                if ids is None:
                    continue
                self.submit(group, ids, 0)
                while len(self.in_flight) >= max_in_flight:
                    self.wait_one()
            while self.in_flight:
                self.wait_one()
        finally:
            self.bar.close()
            for fut in list(self.in_flight):
                fut.cancel()
        return self.tally

    def unfinished(self, group: int) -> list[int] | range | None:
        """The ids of the group's blocks that are not done yet (None when all are); done ones
        count as skipped."""
        start = group * self.group_size
        length = min(self.group_size, self.n - start)
        done = self.markers.done_in_group(group, length)
        if done.all():
            self.tally.skipped += length
            self.bar.update(0, 0)
            self.bar.total -= length
            return None
        self.tally.skipped += int(done.sum())
        self.bar.total -= int(done.sum())
        if not done.any():
            return range(start, start + length)
        return [start + int(i) for i in np.flatnonzero(~done)]

    def submit(self, group: int, ids: list[int] | range, attempt: int) -> None:
        start = group * self.group_size
        length = min(self.group_size, self.n - start)
        task = self.task
        fut = self.client.submit(
            run_group,
            self.process,
            self.grid,
            ids,
            self.markers._group_path(group),
            start,
            length,
            task.max_retries,
            key=f"{task.name}-{self.markers.hash}-g{group}-a{attempt}",
            resources=task.resources,
            pure=False,
            retries=0,
        )
        self.in_flight[fut] = Attempt(group, ids, attempt, time.perf_counter())

    def retry_or_fail(self, attempt: Attempt, why: str) -> bool:
        """Resubmit the attempt's group if it has tries left (True); else count its blocks as
        failed with ``why`` and return False."""
        if attempt.number < self.task.max_retries:
            self.submit(attempt.group, attempt.ids, attempt.number + 1)
            return True
        self.tally.add_failures([(b, why) for b in attempt.ids])
        return False

    def collect(self, fut) -> None:
        attempt = self.in_flight.pop(fut)
        try:
            newly, vox, fails = fut.result()
        except Exception as e:  # the task itself died: worker lost, unpicklable, ...
            fut.release()
            if not self.retry_or_fail(attempt, f"{e.__class__.__name__}: {e}"):
                self.bar.update(0, 0, len(attempt.ids))
            return
        fut.release()
        self.tally.run += newly
        self.tally.voxels += vox
        self.tally.add_failures(fails)
        self.bar.update(newly, vox // max(1, math.prod(self.task.voxel_size)), len(fails))

    def check_timeouts(self) -> None:
        now = time.perf_counter()
        task = self.task
        if task.resources and now - self.last_resource_check > RESOURCE_WAIT_S:
            # the workers that offered the resource may have gone: fail clearly, do not hang
            self.last_resource_check = now
            _check_resources(self.client, task)
        if not task.timeout_s:
            return
        for fut, attempt in list(self.in_flight.items()):
            if now - attempt.started > task.timeout_s * len(attempt.ids):
                self.in_flight.pop(fut)
                fut.cancel()
                why = f"timed out after {task.timeout_s:.0f} s per block"
                if not self.retry_or_fail(attempt, why):
                    self.bar.update(0, 0, len(attempt.ids))

    def wait_one(self) -> None:
        """Collect what finished (waking at least every second to check timeouts)."""
        try:
            finished, _ = wait(list(self.in_flight), timeout=1.0, return_when="FIRST_COMPLETED")
        except TimeoutError:
            finished = set()
        for fut in finished:
            if fut in self.in_flight:
                self.collect(fut)
        self.check_timeouts()


def _large(obj: Any) -> bool:
    """Scatter the stage callable once when it is big, instead of sending it with every task."""
    try:
        return len(pickle.dumps(obj)) > 100_000
    except Exception:
        return False
