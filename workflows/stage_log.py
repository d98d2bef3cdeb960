"""The stage log: a completion record per workflow step (``<output>.done/workflow/<step>.json``)
holding a hash of the step's configuration chained with the hashes of the steps before it, so a
changed parameter reruns that step and everything after it; and the timing of each step."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from pipeline.io.fs import filesystem
from pipeline.runner.done import markers_root, params_hash


class StageLog:
    """Completion records of whole steps, and the timing of each."""

    def __init__(self, output: str, plan: Sequence[str] = ()):
        self.plan = list(plan)
        self.url = f"{markers_root(output.rstrip('/') + '/x').rsplit('/', 1)[0]}/workflow"
        self.fs, self.path = filesystem(self.url)
        self.times: dict[str, dict[str, Any]] = {}
        self.chain = ""

    def run(
        self,
        name: str,
        config: Any,
        fn: Callable[[], dict[str, Any]],
        progress: bool,
        provides: Sequence[str] = (),
    ) -> dict[str, Any]:
        """The record of step ``name``: the saved one when the chained hash of ``config`` matches
        (and it holds every value in ``provides``), else ``fn()``, saved once it returns."""
        self.chain = params_hash({"stage": name, "config": config, "upstream": self.chain})
        saved = self._saved(name)
        if saved is not None and all(k in saved["result"] for k in provides):
            if progress:
                print(f"{name}: already done, skipped", file=sys.stderr)
            self.times[name] = {"seconds": 0.0, "skipped": True, **saved.get("timing", {})}
            return saved["result"]
        if progress:
            at = f"[{self.plan.index(name) + 1}/{len(self.plan)}] " if name in self.plan else ""
            print(f"{at}{name} ...", file=sys.stderr, flush=True)
        t0 = time.perf_counter()
        result = fn()
        secs = time.perf_counter() - t0
        timing = {"seconds": round(secs, 3)}
        if "voxels" in result:
            timing["voxels_per_s"] = round(result["voxels"] / secs, 1) if secs else 0.0
        self.times[name] = {**timing, "skipped": False}
        self.fs.makedirs(self.path, exist_ok=True)
        with self.fs.open(f"{self.path}/{name}.json", "w") as f:
            json.dump({"hash": self.chain, "result": result, "timing": timing}, f, default=str)
        return result

    def _saved(self, name: str) -> dict[str, Any] | None:
        record = f"{self.path}/{name}.json"
        if not self.fs.exists(record):
            return None
        with self.fs.open(record) as f:
            saved = json.load(f)
        return saved if saved.get("hash") == self.chain else None
