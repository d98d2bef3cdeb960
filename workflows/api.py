"""Running a workflow from Python (a notebook, a script): ``run_workflow(path_or_dict)`` validates
it as ``petaseg run`` does, opens the cluster its ``cluster:`` section names (or uses the client
given), runs every step and returns the summary."""

from __future__ import annotations

import copy
import json
import os
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from cluster import open_client
from pipeline.errors import ConfigError
from workflows.config import load_config
from workflows.run import run_workflow as run_validated
from workflows.schema import Workflow

if TYPE_CHECKING:
    from distributed import Client

WorkflowSource = str | os.PathLike | Mapping[str, Any] | Workflow
Overrides = Sequence[str] | Mapping[str, Any] | None


def run_workflow(
    workflow: WorkflowSource,
    client: Client | None = None,
    progress: bool = True,
    overrides: Overrides = None,
) -> dict[str, Any]:
    """Run ``workflow`` end to end and return its summary (step times, outputs, metrics);
    finished steps are skipped, as with ``petaseg run``.

    ``workflow``: a YAML file, a dict of the same keys, or a validated ``Workflow``.
    ``client``: the Dask client to run on; None opens the cluster of the workflow's ``cluster:``
    section and closes it afterwards. ``overrides``: ``--set`` strings
    (``["stages.segment.thresholds=[0.4,0.5]"]``) or a dict of dotted keys to values
    (``{"stages.segment.thresholds": [0.4, 0.5]}``)."""
    wf = load_workflow(workflow, overrides)
    if client is not None:
        return run_validated(wf, client, progress)
    with open_client(wf.cluster.spec()) as own:
        return run_validated(wf, own, progress)


def load_workflow(workflow: WorkflowSource, overrides: Overrides = None) -> Workflow:
    """``workflow`` validated like ``petaseg run`` validates a file (a wrong key is a
    ``ConfigError`` naming its key path); a dict given is not changed."""
    settings = as_set_options(overrides)
    if isinstance(workflow, Workflow):
        if not settings:
            return workflow
        workflow = workflow.model_dump(mode="json")
    if isinstance(workflow, Mapping):
        return load_config(Workflow, None, settings, data=copy.deepcopy(dict(workflow)))
    if isinstance(workflow, str | os.PathLike):
        return load_config(Workflow, os.fspath(workflow), settings)
    raise ConfigError(
        f"a workflow is a YAML file, a dict or a Workflow, not {type(workflow).__name__}"
    )


def as_set_options(overrides: Overrides) -> list[str]:
    """Overrides as ``--set`` strings: a dict's values are written as JSON, which YAML reads."""
    if overrides is None:
        return []
    if isinstance(overrides, str):
        return [overrides]
    if isinstance(overrides, Mapping):
        return [f"{key}={json.dumps(value, default=str)}" for key, value in overrides.items()]
    return [str(item) for item in overrides]
