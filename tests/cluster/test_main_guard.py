"""``cluster.main_guard``: a process cluster asked for at module level of a script outside
``if __name__ == "__main__":`` runs on threads with a warning naming the line; under the guard,
in a notebook (no script file) or with the fork start method it keeps its processes; a worker
process re-running such a script is refused with the fix. (The real script in a subprocess is
in tests/workflows/test_python_api.py.)"""

from __future__ import annotations

import multiprocessing
import types

import dask
import pytest

from cluster import ClusterSetupError, ClusterSpec, main_guard
from cluster.main_guard import processes_or_threads

ASK = "kinds.append(processes_or_threads(ClusterSpec(kind, workers=2)).kind)"


def kinds_asked(tmp_path, monkeypatch, source: str, kind: str = "local", **main) -> list[str]:
    """Run ``source`` as the module-level code of a main script (its frames name the script's
    file) and return the cluster kinds its calls of ``processes_or_threads`` got."""
    path = tmp_path / "script.py"
    path.write_text(source)
    module = types.ModuleType(main.pop("name", "__main__"))
    module.__file__ = main.pop("file", str(path))
    monkeypatch.setattr(main_guard, "_main_module", lambda: module)
    namespace = {
        "__name__": "__main__",
        "kind": kind,
        "kinds": [],
        "processes_or_threads": processes_or_threads,
        "ClusterSpec": ClusterSpec,
    }
    exec(compile(source, str(path), "exec"), namespace)
    return namespace["kinds"]


def test_an_unguarded_call_runs_on_threads_with_a_warning(tmp_path, monkeypatch):
    source = f"import os\n{ASK}\n"
    with pytest.warns(RuntimeWarning, match='outside `if __name__ == "__main__":`') as caught:
        assert kinds_asked(tmp_path, monkeypatch, source) == ["threads"]
    (warning,) = caught
    assert (warning.filename, warning.lineno) == (str(tmp_path / "script.py"), 2)
    assert "\n" not in str(warning.message)


def test_a_call_through_a_function_is_judged_where_the_script_calls(tmp_path, monkeypatch):
    source = f"def main():\n    {ASK}\n\nmain()\nif __name__ == '__main__':\n    main()\n"
    with pytest.warns(RuntimeWarning) as caught:
        assert kinds_asked(tmp_path, monkeypatch, source) == ["threads", "local"]
    assert [w.lineno for w in caught] == [4]


@pytest.mark.parametrize("test", ["__name__ == '__main__'", '"__main__" == __name__'])
def test_a_guarded_call_keeps_its_processes(tmp_path, monkeypatch, recwarn, test):
    source = f"import os\n\nif {test}:\n    x = 1\n    {ASK}\nelse:\n    pass\n"
    assert kinds_asked(tmp_path, monkeypatch, source) == ["local"]
    assert not recwarn.list


def test_notebooks_fork_and_other_kinds_keep_what_they_ask(tmp_path, monkeypatch, recwarn):
    source = f"{ASK}\n"
    assert kinds_asked(tmp_path, monkeypatch, source, file=None) == ["local"]  # no script
    assert kinds_asked(tmp_path, monkeypatch, source, kind="threads") == ["threads"]
    with dask.config.set({"distributed.worker.multiprocessing-method": "fork"}):
        assert kinds_asked(tmp_path, monkeypatch, source) == ["local"]  # nothing is re-run
    assert not recwarn.list


def test_the_test_runner_is_no_unguarded_script():
    assert main_guard.unguarded_script_line() is None


def test_a_worker_process_re_running_the_script_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(multiprocessing, "parent_process", lambda: object())
    with pytest.raises(ClusterSetupError, match=r"script.py:1 starts a Dask cluster while a wor"):
        kinds_asked(tmp_path, monkeypatch, f"{ASK}\n", name="__mp_main__")
