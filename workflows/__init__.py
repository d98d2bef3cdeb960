"""What a user drives: the ``petaseg`` CLI (``workflows.cli``), the validated workflow schema,
declared steps and the code that runs them, submit/status, the demo, and training workflows."""

__all__ = ["cli", "config", "demo", "run", "schema", "stage_log", "status", "steps", "submit"]
