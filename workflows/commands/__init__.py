"""Workflow-level CLI commands (demo, run, submit, status)."""
