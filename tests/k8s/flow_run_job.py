"""Render the Job the Prefect Kubernetes worker creates for each deployment in prefect.yaml.

Mirrors what prefect-kubernetes does with the work pool's base job template
(``k8s/base/prefect/base-job-template.json``): the variables' defaults, the deployment's
``job_variables`` on top, placeholders filled with Prefect's own ``apply_values``, then the
worker's additions (Prefect env vars prepended, default command, generateName). Used by
``tests/k8s`` and by ``make k8s-check``, which validates the output against the Kubernetes
schemas::

    python tests/k8s/flow_run_job.py > build/k8s/flow-run-jobs.yaml
"""

from __future__ import annotations

import copy
import json
import shlex
import sys
from pathlib import Path
from typing import Any

import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
BASE_JOB_TEMPLATE = REPO_ROOT / "k8s" / "base" / "prefect" / "base-job-template.json"
PREFECT_YAML = REPO_ROOT / "prefect.yaml"

# what the worker always puts in front of the template's env (values here are examples)
_WORKER_ENV = {
    "PREFECT_API_URL": "http://prefect-server:4200/api",
    "PREFECT__FLOW_RUN_ID": "00000000-0000-0000-0000-000000000000",
}
_DEFAULT_COMMAND = ["prefect", "flow-run", "execute"]
# fields prefect-kubernetes requires in spec.template.spec although they belong to the Job spec
PREFECT_POD_SPEC_QUIRKS = ("parallelism", "completions")


def load_base_job_template() -> dict[str, Any]:
    """The work pool's base job template as committed."""
    template: dict[str, Any] = json.loads(BASE_JOB_TEMPLATE.read_text())
    return template


def load_deployments() -> list[dict[str, Any]]:
    """The ``deployments`` of prefect.yaml (YAML anchors resolved)."""
    deployments: list[dict[str, Any]] = yaml.safe_load(PREFECT_YAML.read_text())["deployments"]
    return deployments


def render_job(
    template: dict[str, Any], job_variables: dict[str, Any] | None = None, name: str = "restora-flow-run"
) -> dict[str, Any]:
    """Fill the base job template as the worker would and return the Job manifest.

    Args:
        template: base job template (``job_configuration`` + ``variables``).
        job_variables: a deployment's ``work_pool.job_variables``.
        name: flow-run name (the Job's generateName prefix).

    Returns:
        The ``batch/v1`` Job as a dict.
    """
    from prefect.utilities.templating import apply_values  # heavy import, only when rendering

    properties = template["variables"]["properties"]
    values: dict[str, Any] = {key: spec["default"] for key, spec in properties.items() if "default" in spec}
    values.update(job_variables or {})
    values.setdefault("name", name)

    config = apply_values(copy.deepcopy(template["job_configuration"]), values)
    job: dict[str, Any] = config["job_manifest"]
    pod_spec = job["spec"]["template"]["spec"]
    container = pod_spec["containers"][0]

    env = {**_WORKER_ENV, **(config.get("env") or {})}
    template_env = container.get("env")
    extra_env = template_env if isinstance(template_env, list) else []
    container["env"] = [{"name": key, "value": str(value)} for key, value in env.items()] + extra_env

    command = container.get("args")
    if command is None:
        container["args"] = list(_DEFAULT_COMMAND)
    elif isinstance(command, str):
        container["args"] = shlex.split(command)

    metadata = job.setdefault("metadata", {})
    labels = metadata.get("labels")
    metadata["labels"] = {**(labels if isinstance(labels, dict) else {}), **(config.get("labels") or {})}
    if metadata.get("generateName", "-") == "-":
        metadata["generateName"] = f"{name}-"
    return job


def render_deployment_jobs() -> dict[str, dict[str, Any]]:
    """One rendered Job per deployment of prefect.yaml, by deployment name."""
    template = load_base_job_template()
    return {
        deployment["name"]: render_job(
            template,
            (deployment.get("work_pool") or {}).get("job_variables"),
            name=deployment["name"],
        )
        for deployment in load_deployments()
    }


def main() -> int:
    """Write the rendered Jobs as a multi-document YAML stream to stdout."""
    jobs = render_deployment_jobs()
    for deployment, job in jobs.items():
        # the API server fills the name from generateName; validators want one
        job["metadata"]["name"] = f"{deployment}-example"
        # prefect-kubernetes insists on parallelism/completions inside the *pod* spec (its
        # manifest check rejects a template without them); the API server drops these
        # unknown fields with a warning, so validate what is actually stored
        pod_spec = job["spec"]["template"]["spec"]
        for quirk in PREFECT_POD_SPEC_QUIRKS:
            pod_spec.pop(quirk, None)
    yaml.safe_dump_all(jobs.values(), sys.stdout, sort_keys=False)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
