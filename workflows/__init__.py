"""What a user drives: the ``petaseg`` CLI (``workflows.cli``), the validated workflow schema,
declared steps and the code that runs them, submit/status, the demo, and training workflows.

From Python (a notebook, a script): ``from workflows import run_workflow`` runs a workflow file
or dict and returns its summary; ``load_workflow`` only validates it. Both load on first use
(``workflows.api``), so importing a submodule stays light."""

from pipeline.lazy_api import LazyApi

__getattr__ = LazyApi(__name__, {"api": ["load_workflow", "run_workflow"]})

__all__ = [
    "cli",
    "config",
    "demo",
    "load_workflow",
    "run",
    "run_workflow",
    "schema",
    "stage_log",
    "status",
    "steps",
    "submit",
]
