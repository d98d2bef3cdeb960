"""Collect what ``benchmarks/gpu_check.sh`` ran into one JSON file and print the headline figures.

``python benchmarks/gpu_results.py LOGS TESTS_EXIT OUT``: LOGS holds ``smi.txt``, ``torch.txt``,
``tests.txt`` and the last output line of each benchmark (``inference.json``, ``model.json``).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

TARGET_PEAK_FRACTION = 0.25
HEADLINE = ("gpu_vps", "gpu_busy_fraction", "gpu_peak_mb", "gpu_peak_fraction")


def _text(path: Path) -> str:
    return path.read_text().strip() if path.is_file() else ""


def _json_line(path: Path) -> dict | None:
    try:
        value = json.loads(_text(path))
    except json.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None


def collect(logs: Path, tests_exit: int) -> dict:
    tests = _text(logs / "tests.txt").splitlines()
    return {
        "device": {"nvidia_smi": _text(logs / "smi.txt"), "torch": _text(logs / "torch.txt")},
        "tests": {"exit_code": tests_exit, "summary": tests[-1] if tests else ""},
        "inference": _json_line(logs / "inference.json"),
        "model": _json_line(logs / "model.json"),
        "target_gpu_peak_fraction": TARGET_PEAK_FRACTION,
    }


def headline(results: dict) -> list[str]:
    lines = [f"device: {results['device']['torch']}", f"gpu tests: {results['tests']['summary']}"]
    for name in ("inference", "model"):
        bench = results[name]
        if bench is None:
            lines.append(f"bench {name}: no result")
            continue
        figures = ", ".join(f"{k}={bench.get(k)}" for k in HEADLINE)
        lines.append(f"bench {name}: {figures}")
        fraction = bench.get("gpu_peak_fraction")
        if isinstance(fraction, int | float):
            met = "meets" if fraction >= TARGET_PEAK_FRACTION else "is below"
            lines.append(
                f"  gpu_peak_fraction {fraction:.3f} {met} the target {TARGET_PEAK_FRACTION}"
            )
    return lines


def main(argv: list[str]) -> int:
    logs, tests_exit, out = Path(argv[0]), int(argv[1]), Path(argv[2])
    results = collect(logs, tests_exit)
    out.write_text(json.dumps(results, indent=1) + "\n")
    print("\n".join(headline(results)))
    print(f"results: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
