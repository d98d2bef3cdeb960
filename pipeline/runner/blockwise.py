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
import sys
import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from distributed import default_client

from pipeline.errors import BlockFailures, ClusterError, InputError
from pipeline.geometry import Coord, Roi, as_coord
from pipeline.runner.done import DoneMarkers, read_group, write_group
from pipeline.runner.grid import Block, BlockGrid
from pipeline.runner.progress import BlockProgress

__all__ = ["Block", "BlockGrid", "BlockTask", "RunReport", "run_blockwise", "auto_group_size"]

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


def _check_resources(client, task: BlockTask, wait_s: float | None = None) -> None:
    if not task.resources:
        return
    deadline = time.time() + (RESOURCE_WAIT_S if wait_s is None else wait_s)
    while True:
        workers = client.scheduler_info(n_workers=-1).get("workers", {})
        ok = [
            w
            for w in workers.values()
            if all(w.get("resources", {}).get(k, 0) >= v for k, v in task.resources.items())
        ]
        if ok:
            return
        if time.time() > deadline:
            need = ", ".join(f"{k}={v}" for k, v in task.resources.items())
            raise ClusterError(
                f"stage '{task.name}' needs workers with resources {need}, but none of the "
                f"{len(workers)} worker(s) offers them; start workers with `dask worker ... "
                f"--resources {need.replace(', ', ',')}` or run the stage without them"
            )
        time.sleep(0.5)


def current_client():
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
    client=None,
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
    voxel = math.prod(as_coord(task.voxel_size, grid.total_roi.ndim))

    def report(run: int, skipped: int, failed: list[int], vox: int) -> RunReport:
        secs = time.perf_counter() - t0
        return RunReport(
            task.name,
            n,
            run,
            skipped,
            failed,
            secs,
            vox / voxel / secs if secs else 0.0,
            markers.url,
        )

    if n == 0 or markers.is_complete():
        if progress:
            print(f"{task.name}: all {n} blocks already done ({markers.url})", file=sys.stderr)
        return report(0, n, [], 0)
    markers.prepare(n)

    client = client if client is not None else current_client()
    _check_resources(client, task)
    if progress:
        link = getattr(client, "dashboard_link", None)
        if link:
            print(f"{task.name}: Dask dashboard at {link}", file=sys.stderr)
    if max_in_flight is None:
        threads = sum(client.nthreads().values()) or 1
        max_in_flight = max(8, 4 * threads)
    return _drive(task, client, grid, markers, group_size, max_in_flight, progress, report)


def _drive(task, client, grid, markers, group_size, max_in_flight, progress, report) -> RunReport:
    n = grid.num_blocks
    n_groups = math.ceil(n / group_size)
    bar = BlockProgress(task.name, n, enabled=progress)
    process_future = (
        client.scatter(task.process, broadcast=False, hash=False)
        if _large(task.process)
        else task.process
    )
    run = skipped = vox_total = 0
    failed_ids: list[int] = []  # at most the first 1000 are kept; the count is exact
    failed_count = 0
    errors: dict[int, str] = {}
    attempts: dict[Any, tuple[int, list[int] | range, int, float]] = {}  # in flight only
    timeout_factor = task.timeout_s

    def submit(group: int, ids, attempt: int) -> None:
        start = group * group_size
        length = min(group_size, n - start)
        url = markers._group_path(group)
        fut = client.submit(
            run_group,
            process_future,
            grid,
            ids,
            url,
            start,
            length,
            task.max_retries,
            key=f"{task.name}-{markers.hash}-g{group}-a{attempt}",
            resources=task.resources,
            pure=False,
            retries=0,
        )
        attempts[fut] = (group, ids, attempt, time.perf_counter())

    def record_failures(fails: list[tuple[int, str]]) -> None:
        nonlocal failed_count
        for block_id, err in fails:
            failed_count += 1
            if len(failed_ids) < 1000:
                failed_ids.append(block_id)
            if len(errors) < 5:
                errors[block_id] = err

    def collect(fut) -> None:
        nonlocal run, vox_total
        group, ids, attempt, _ = attempts.pop(fut)
        try:
            newly, vox, fails = fut.result()
        except Exception as e:  # the task itself died: worker lost, unpicklable, ...
            fut.release()
            if attempt < task.max_retries:
                submit(group, ids, attempt + 1)
                return
            fails = [(b, f"{e.__class__.__name__}: {e}") for b in ids]
            newly, vox = 0, 0
        fut.release()
        run += newly
        vox_total += vox
        record_failures(fails)
        bar.update(newly, vox // max(1, math.prod(task.voxel_size)), len(fails))

    last_resource_check = [time.perf_counter()]

    def check_timeouts() -> None:
        now = time.perf_counter()
        if task.resources and now - last_resource_check[0] > RESOURCE_WAIT_S:
            # the workers that offered the resource may have gone: fail clearly, do not hang
            last_resource_check[0] = now
            _check_resources(client, task)
        if not timeout_factor:
            return
        for fut, (group, ids, attempt, started) in list(attempts.items()):
            if now - started > timeout_factor * len(ids):
                attempts.pop(fut)
                fut.cancel()
                if attempt < task.max_retries:
                    submit(group, ids, attempt + 1)
                else:
                    record_failures(
                        [(b, f"timed out after {timeout_factor:.0f} s per block") for b in ids]
                    )
                    bar.update(0, 0, len(ids))

    try:
        for group in range(n_groups):
            start = group * group_size
            length = min(group_size, n - start)
            done = markers.done_in_group(group, length)
            if done.all():
                skipped += length
                bar.update(0, 0)
                bar.total -= length
                continue
            skipped += int(done.sum())
            bar.total -= int(done.sum())
            ids = (
                range(start, start + length)
                if not done.any()
                else [start + int(i) for i in np.flatnonzero(~done)]
            )
            submit(group, ids, 0)
            while len(attempts) >= max_in_flight:
                _wait_one(attempts, collect, check_timeouts)
        while attempts:
            _wait_one(attempts, collect, check_timeouts)
    finally:
        bar.close()
        for fut in list(attempts):
            fut.cancel()

    if failed_count:
        markers.clear_complete()
        raise BlockFailures(task.name, failed_ids, failed_count, errors)
    markers.mark_complete(n)
    return report(run, skipped, [], vox_total)


def _wait_one(attempts: dict, collect, check_timeouts) -> None:
    """Collect what finished (waking at least every second to check timeouts)."""
    from distributed import wait

    try:
        finished, _ = wait(list(attempts), timeout=1.0, return_when="FIRST_COMPLETED")
    except TimeoutError:
        finished = set()
    for fut in finished:
        if fut in attempts:
            collect(fut)
    check_timeouts()


def _large(obj: Any) -> bool:
    """Scatter the stage callable once when it is big, instead of sending it with every task."""
    import pickle

    try:
        return len(pickle.dumps(obj)) > 100_000
    except Exception:
        return False
