"""Policy checks on the rendered Kubernetes manifests (k8s/ overlays) and prefect.yaml.

Every overlay is rendered with ``kubectl kustomize`` (offline, no cluster). The checks are
plain functions that return a list of problems, so each one is also run against a
deliberately broken manifest to prove it can fail. Schema validation of the same output is
``make k8s-check`` (kubernetes-validate --strict).
"""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
K8S_DIR = REPO_ROOT / "k8s"
OVERLAYS = ("dev", "gpu")
POD_KINDS = {"Deployment", "StatefulSet", "DaemonSet", "Job", "CronJob", "ReplicaSet", "Pod"}
PLACEHOLDER = "change-me"
RESTORA_IMAGE = "ghcr.io/restora/restora:0.1.0"

Manifest = dict[str, Any]


# --------------------------------------------------------------------------- rendering


def _kubectl() -> str:
    kubectl = os.environ.get("KUBECTL") or shutil.which("kubectl")
    if not kubectl:
        pytest.fail(
            "kubectl not found (set KUBECTL or put kubectl >= 1.27 on PATH): "
            "it renders the k8s/ overlays with `kubectl kustomize`, no cluster needed",
            pytrace=False,
        )
    return kubectl


@cache
def _render_cached(overlay: str) -> tuple[Manifest, ...]:
    proc = subprocess.run(
        [_kubectl(), "kustomize", str(K8S_DIR / "overlays" / overlay)],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    if proc.returncode != 0:
        pytest.fail(f"kubectl kustomize k8s/overlays/{overlay} failed:\n{proc.stderr}", pytrace=False)
    return tuple(doc for doc in yaml.safe_load_all(proc.stdout) if doc)


def render(overlay: str) -> list[Manifest]:
    """The overlay's rendered resources (a fresh copy: tests may mutate it)."""
    return copy.deepcopy(list(_render_cached(overlay)))


def _load_flow_run_job_module() -> Any:
    path = Path(__file__).with_name("flow_run_job.py")
    spec = importlib.util.spec_from_file_location("restora_k8s_flow_run_job", path)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


flow_run_job = _load_flow_run_job_module()


@cache
def _flow_run_jobs_cached() -> dict[str, Manifest]:
    return flow_run_job.render_deployment_jobs()


def flow_run_jobs() -> dict[str, Manifest]:
    """The Job the Prefect worker creates for each deployment of prefect.yaml."""
    return copy.deepcopy(_flow_run_jobs_cached())


def find(docs: list[Manifest], kind: str, name: str) -> Manifest:
    for doc in docs:
        if doc["kind"] == kind and doc["metadata"]["name"] == name:
            return doc
    raise AssertionError(f"{kind}/{name} not rendered")


def pod_spec(doc: Manifest) -> dict[str, Any] | None:
    """The pod spec inside a workload (None for non-workloads)."""
    kind = doc.get("kind")
    if kind not in POD_KINDS:
        return None
    if kind == "Pod":
        return doc["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]


def containers(spec: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for field in ("initContainers", "containers", "ephemeralContainers"):
        for container in spec.get(field) or []:
            yield field, container


def workloads(docs: list[Manifest]) -> Iterator[tuple[str, dict[str, Any]]]:
    for doc in docs:
        spec = pod_spec(doc)
        if spec is not None:
            yield f"{doc['kind']}/{doc['metadata'].get('name') or doc['metadata'].get('generateName')}", spec


def all_workloads(overlay: str) -> list[Manifest]:
    """Rendered resources of the overlay plus the flow-run Jobs the worker will create."""
    return render(overlay) + list(flow_run_jobs().values())


def container_by_name(doc: Manifest, name: str) -> dict[str, Any]:
    spec = pod_spec(doc)
    assert spec is not None
    for _, container in containers(spec):
        if container["name"] == name:
            return container
    raise AssertionError(f"container {name} not in {doc['kind']}/{doc['metadata']['name']}")


# --------------------------------------------------------------------------- checks


def resource_problems(docs: list[Manifest]) -> list[str]:
    """Containers without cpu+memory requests and limits (requests <= limits not checked)."""
    problems = []
    for where, spec in workloads(docs):
        for _, container in containers(spec):
            resources = container.get("resources") or {}
            for section in ("requests", "limits"):
                for resource in ("cpu", "memory"):
                    if not (resources.get(section) or {}).get(resource):
                        problems.append(f"{where} container {container['name']}: no {section}.{resource}")
    return problems


def security_problems(docs: list[Manifest]) -> list[str]:
    """Containers that may run as root, escalate privileges, keep capabilities or write their root fs."""
    problems = []
    for where, spec in workloads(docs):
        pod_sc = spec.get("securityContext") or {}
        if spec.get("hostNetwork") or spec.get("hostPID") or spec.get("hostIPC"):
            problems.append(f"{where}: uses host namespaces")
        for _, container in containers(spec):
            sc = container.get("securityContext") or {}
            name = f"{where} container {container['name']}"
            # container settings override the pod's
            effective = {**pod_sc, **sc}
            if effective.get("runAsNonRoot") is not True:
                problems.append(f"{name}: runAsNonRoot is not true")
            if effective.get("runAsUser") == 0:
                problems.append(f"{name}: runAsUser 0")
            if sc.get("allowPrivilegeEscalation") is not False:
                problems.append(f"{name}: allowPrivilegeEscalation is not false")
            if sc.get("privileged"):
                problems.append(f"{name}: privileged")
            if "ALL" not in ((sc.get("capabilities") or {}).get("drop") or []):
                problems.append(f"{name}: capabilities not dropped (drop: [ALL])")
            if sc.get("readOnlyRootFilesystem") is not True:
                problems.append(f"{name}: readOnlyRootFilesystem is not true")
            if (effective.get("seccompProfile") or {}).get("type") not in ("RuntimeDefault", "Localhost"):
                problems.append(f"{name}: no RuntimeDefault seccomp profile")
    return problems


_PINNED_TAG = re.compile(r"^[^@]+:(?!latest$)[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}$")
_DIGEST = re.compile(r"@sha256:[0-9a-f]{64}$")


def image_problems(docs: list[Manifest]) -> list[str]:
    """Images without an explicit, non-latest tag (or a digest)."""
    problems = []
    for where, spec in workloads(docs):
        for _, container in containers(spec):
            image = container.get("image", "")
            last = image.rsplit("/", 1)[-1]
            if _DIGEST.search(image):
                continue
            if ":" not in last or not _PINNED_TAG.match(image) or last.endswith(":latest"):
                problems.append(f"{where} container {container['name']}: image {image!r} is not pinned")
    return problems


_SECRET_ENV_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|AUTH_STRING|API_KEY|ACCESS_KEY|CREDENTIAL)", re.I)


def secret_problems(docs: list[Manifest]) -> list[str]:
    """Literal credentials: Secret values that are not placeholders, or secret-looking env values."""
    problems = []
    for doc in docs:
        if doc.get("kind") != "Secret":
            continue
        name = doc["metadata"]["name"]
        for key, value in (doc.get("data") or {}).items():
            decoded = base64.b64decode(value).decode("utf-8", "replace")
            if PLACEHOLDER not in decoded.lower():
                problems.append(f"Secret/{name} data.{key} holds a non-placeholder value")
        for key, value in (doc.get("stringData") or {}).items():
            if PLACEHOLDER not in str(value).lower():
                problems.append(f"Secret/{name} stringData.{key} holds a non-placeholder value")
    for where, spec in workloads(docs):
        for _, container in containers(spec):
            for env in container.get("env") or []:
                literal = env.get("value")
                if literal is None or not _SECRET_ENV_NAME.search(env["name"]):
                    continue
                if env["name"].endswith("_FILE") and str(literal).startswith("/"):
                    continue  # a path to a mounted secret, not the secret
                problems.append(f"{where} container {container['name']}: env {env['name']} is a literal value")
    return problems


def _selects(selector: dict[str, Any] | None, labels: dict[str, str]) -> bool:
    """Kubernetes label-selector semantics (matchLabels + matchExpressions)."""
    if selector is None:
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr["key"], expr["operator"], expr.get("values") or []
        if (
            (op == "In" and labels.get(key) not in values)
            or (op == "NotIn" and labels.get(key) in values)
            or (op == "Exists" and key not in labels)
            or (op == "DoesNotExist" and key in labels)
        ):
            return False
    return True


def pod_labels(docs: list[Manifest]) -> dict[str, dict[str, str]]:
    """app.kubernetes.io/name -> pod template labels, for every workload (incl. flow-run Jobs)."""
    labels = {}
    for doc in docs:
        if doc.get("kind") not in POD_KINDS:
            continue
        template_labels = doc["spec"]["template"]["metadata"]["labels"]
        labels[template_labels["app.kubernetes.io/name"]] = template_labels
    return labels


def allowed_sources(docs: list[Manifest], target: str, port: int) -> set[str]:
    """Which workloads of the namespace may open ``port`` on pods of ``target`` under the NetworkPolicies.

    Only same-namespace pod peers are resolved; other peers are reported as
    ``namespace:<selector>`` / ``ipBlock`` / ``*`` (anything).
    """
    labels = pod_labels(docs)
    target_labels = labels[target]
    policies = [
        doc
        for doc in docs
        if doc.get("kind") == "NetworkPolicy"
        and "Ingress" in (doc["spec"].get("policyTypes") or ["Ingress"])
        and _selects(doc["spec"]["podSelector"], target_labels)
    ]
    if not policies:
        return {"*"}  # not isolated: everything may connect
    sources: set[str] = set()
    for policy in policies:
        for rule in policy["spec"].get("ingress") or []:
            ports = rule.get("ports")
            if ports and not any(p.get("port") in (port, None) for p in ports):
                continue
            peers = rule.get("from")
            if not peers:
                sources.add("*")
                continue
            for peer in peers:
                if "ipBlock" in peer:
                    sources.add("ipBlock")
                elif "namespaceSelector" in peer:
                    sources.add(f"namespace:{peer['namespaceSelector']}")
                else:
                    sources |= {name for name, lbls in labels.items() if _selects(peer["podSelector"], lbls)}
    return sources


def network_problems(docs: list[Manifest]) -> list[str]:
    """The intended traffic picture (docs/deploy.md), as who-may-reach-what."""
    everyone = set(pod_labels(docs))
    expected = {
        ("triton", 8001): {"prefect-worker", "restora-flow-run"},
        ("triton", 8000): {"prefect-worker", "restora-flow-run"},
        ("minio", 9000): {"prefect-worker", "restora-flow-run", "triton", "minio-setup"},
        ("minio", 9001): set(),
        ("ingest-listener", 8080): {"minio"},
        ("prefect-server", 4200): {"prefect-worker", "restora-flow-run", "ingest-listener"},
        ("postgres", 5432): {"prefect-server"},
        ("otel-collector", 4318): everyone,
        ("otel-collector", 4317): everyone,
        ("jaeger", 4317): {"otel-collector"},
    }
    problems = []
    for (target, port), want in expected.items():
        got = allowed_sources(docs, target, port)
        if got != want:
            problems.append(f"{target}:{port} reachable from {sorted(got)}, expected {sorted(want)}")
    metrics = allowed_sources(docs, "triton", 8002)
    if metrics & everyone or "*" in metrics:
        problems.append(f"triton:8002 (metrics) reachable from {sorted(metrics)}, expected only namespace monitoring")
    return problems


# --------------------------------------------------------------------------- rendered overlays


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlay_renders_every_component(overlay: str) -> None:
    docs = render(overlay)
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    for kind, name in [
        ("Namespace", "restora"),
        ("Deployment", "triton"),
        ("Service", "triton"),
        ("StatefulSet", "minio"),
        ("Service", "minio"),
        ("Job", "minio-setup"),
        ("StatefulSet", "postgres"),
        ("Deployment", "prefect-server"),
        ("Deployment", "prefect-worker"),
        ("Role", "prefect-worker"),
        ("RoleBinding", "prefect-worker"),
        ("ServiceAccount", "restora-flow-run"),
        ("Deployment", "ingest-listener"),
        ("Service", "ingest-listener"),
        ("Deployment", "otel-collector"),
        ("Deployment", "jaeger"),
        ("ConfigMap", "restora-env"),
    ]:
        assert (kind, name) in names, f"{overlay}: {kind}/{name} missing"
    namespaced = [d for d in docs if d["kind"] != "Namespace"]
    assert {d["metadata"].get("namespace") for d in namespaced} == {"restora"}
    assert not [d for d in docs if d["kind"] in {"ClusterRole", "ClusterRoleBinding"}], "no cluster-wide RBAC"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_has_requests_and_limits(overlay: str) -> None:
    assert resource_problems(all_workloads(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_container_runs_non_root_and_locked_down(overlay: str) -> None:
    assert security_problems(all_workloads(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_all_images_are_pinned(overlay: str) -> None:
    assert image_problems(all_workloads(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_no_literal_credentials(overlay: str) -> None:
    assert secret_problems(all_workloads(overlay)) == []


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_network_policies_allow_only_the_intended_paths(overlay: str) -> None:
    docs = all_workloads(overlay)
    policies = {d["metadata"]["name"]: d for d in docs if d["kind"] == "NetworkPolicy"}
    assert {"default-deny-ingress", "triton", "minio"} <= set(policies)
    assert policies["default-deny-ingress"]["spec"]["podSelector"] == {}
    assert network_problems(docs) == []


def test_gpu_triton_has_gpu_limit_and_probes() -> None:
    triton = find(render("gpu"), "Deployment", "triton")
    container = container_by_name(triton, "tritonserver")
    assert int(container["resources"]["limits"]["nvidia.com/gpu"]) >= 1
    for probe in ("startupProbe", "readinessProbe"):
        assert container[probe]["httpGet"]["path"] == "/v2/health/ready", probe
    # liveness asks "is the server process alive": probing /ready would restart Triton in a
    # loop whenever one model is unavailable, instead of just taking it out of the Service
    assert container["livenessProbe"]["httpGet"]["path"] == "/v2/health/live"
    startup = container["startupProbe"]
    budget = startup.get("initialDelaySeconds", 0) + startup.get("periodSeconds", 10) * startup.get(
        "failureThreshold", 3
    )
    assert budget >= 15 * 60, f"startup probe gives only {budget}s to load models"
    assert not any(arg.startswith("--model-config-name") for arg in container["args"]), "gpu uses config.pbtxt"


def test_dev_triton_runs_cpu_configs_without_gpu() -> None:
    triton = find(render("dev"), "Deployment", "triton")
    container = container_by_name(triton, "tritonserver")
    assert "--model-config-name=cpu" in container["args"]
    assert "nvidia.com/gpu" not in (container["resources"].get("limits") or {})
    assert container["startupProbe"]["httpGet"]["path"] == "/v2/health/ready"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton_metrics_are_exposed_and_scraped(overlay: str) -> None:
    docs = render(overlay)
    triton = find(docs, "Deployment", "triton")
    annotations = triton["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true"
    assert annotations["prometheus.io/port"] == "8002"
    assert 8002 in {p["containerPort"] for p in container_by_name(triton, "tritonserver")["ports"]}
    assert 8002 in {p["port"] for p in find(docs, "Service", "triton")["spec"]["ports"]}


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_triton_reads_models_from_minio_with_secret_credentials(overlay: str) -> None:
    container = container_by_name(find(render(overlay), "Deployment", "triton"), "tritonserver")
    assert "--model-repository=s3://minio:9000/models/triton" in container["args"]
    env = {e["name"]: e for e in container["env"]}
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        assert env[name]["valueFrom"]["secretKeyRef"]["name"] == "restora-secrets"


def test_dev_secret_is_placeholder_only_and_gpu_renders_none() -> None:
    dev_secrets = [d for d in render("dev") if d["kind"] == "Secret"]
    assert [d["metadata"]["name"] for d in dev_secrets] == ["restora-secrets"]
    assert dev_secrets[0].get("data")
    assert not [d for d in render("gpu") if d["kind"] == "Secret"], "gpu: the real Secret is created out of band"


def test_every_referenced_secret_key_is_in_the_example_env() -> None:
    example = K8S_DIR / "base" / "secrets.example.env"
    keys = {}
    for line in example.read_text().splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            keys[key.strip()] = value.strip()
    assert keys and all(PLACEHOLDER in v for v in keys.values()), "secrets.example.env must hold placeholders only"
    referenced = set()
    for _, spec in workloads(all_workloads("gpu")):
        for _, container in containers(spec):
            for env in container.get("env") or []:
                ref = (env.get("valueFrom") or {}).get("secretKeyRef")
                if ref:
                    assert ref["name"] == "restora-secrets"
                    referenced.add(ref["key"])
        for volume in spec.get("volumes") or []:
            if "secret" in volume:
                assert volume["secret"]["secretName"] == "restora-secrets"
                referenced |= {item["key"] for item in volume["secret"]["items"]}
    assert referenced <= set(keys), f"keys missing from secrets.example.env: {referenced - set(keys)}"


def test_no_secret_manifest_or_secret_source_is_committed_with_values() -> None:
    """Source files: no Secret manifests with data, generators only read *.example.env."""
    for path in sorted(K8S_DIR.rglob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if not isinstance(doc, dict):
                continue
            if doc.get("kind") == "Secret":
                assert not doc.get("data") and not doc.get("stringData"), f"{path}: literal Secret"
            for generator in doc.get("secretGenerator") or []:
                for source in (generator.get("envs") or []) + (generator.get("files") or []):
                    assert str(source).split("=")[-1].endswith(".example.env"), f"{path}: secret source {source}"
                assert not generator.get("literals"), f"{path}: secretGenerator literals"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_restora_pods_get_the_service_endpoints(overlay: str) -> None:
    docs = render(overlay)
    env = find(docs, "ConfigMap", "restora-env")["data"]
    assert env["RESTORA_TRITON__URL"] == "triton:8001"
    assert env["RESTORA_STORAGE__S3_ENDPOINT"] == "http://minio:9000"
    assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://otel-collector:4318"
    assert env["PREFECT_API_URL"] == "http://prefect-server:4200/api"
    for job in flow_run_jobs().values():
        container = job["spec"]["template"]["spec"]["containers"][0]
        assert {"configMapRef": {"name": "restora-env"}} in container["envFrom"]
        mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
        for key in ("RESTORA_STORAGE__ACCESS_KEY_FILE", "RESTORA_STORAGE__SECRET_KEY_FILE"):
            assert Path(env[key]).parent == Path(mounts["s3-credentials"]), key
    listener = container_by_name(find(docs, "Deployment", "ingest-listener"), "ingest-listener")
    assert listener["image"] == RESTORA_IMAGE
    assert listener["command"] == ["restora", "ingest-listener", "--host", "0.0.0.0", "--port", "8080"]


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_minio_buckets_and_ingest_notification(overlay: str) -> None:
    docs = render(overlay)
    setup = container_by_name(find(docs, "Job", "minio-setup"), "mc")
    setup_env = {e["name"]: e.get("value") for e in setup["env"]}
    assert set(setup_env["BUCKETS"].split()) == {"ingest", "masters", "assets", "models"}
    assert setup_env["NOTIFY_BUCKET"] == "ingest"
    target_id = setup_env["WEBHOOK_ARN"].split(":")[4]
    minio = container_by_name(find(docs, "StatefulSet", "minio"), "minio")
    minio_env = {e["name"]: e.get("value") for e in minio["env"]}
    assert minio_env[f"MINIO_NOTIFY_WEBHOOK_ENABLE_{target_id}"] == "on"
    endpoint = minio_env[f"MINIO_NOTIFY_WEBHOOK_ENDPOINT_{target_id}"]
    assert endpoint.startswith("http://ingest-listener:8080/")
    script = find(docs, "ConfigMap", "minio-setup")["data"]["setup.sh"]
    assert "--event put" in script  # put == s3:ObjectCreated:*


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_worker_rbac_is_namespaced_and_sufficient(overlay: str) -> None:
    docs = render(overlay)
    rules = find(docs, "Role", "prefect-worker")["rules"]

    def allowed(group: str, resource: str, verb: str) -> bool:
        return any(group in r["apiGroups"] and resource in r["resources"] and verb in r["verbs"] for r in rules)

    for verb in ("create", "get", "list", "watch", "delete"):
        assert allowed("batch", "jobs", verb)
    for resource in ("pods", "pods/log"):
        assert allowed("", resource, "list")
    assert not any("*" in r["verbs"] or "*" in r["resources"] for r in rules)
    worker = find(docs, "Deployment", "prefect-worker")
    assert worker["spec"]["template"]["spec"]["serviceAccountName"] == "prefect-worker"
    binding = find(docs, "RoleBinding", "prefect-worker")
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "prefect-worker", "namespace": "restora"}]


# --------------------------------------------------------------------------- prefect.yaml + work pool


def test_prefect_yaml_deployments_target_the_kubernetes_work_pool() -> None:
    from prefect.cli.deploy._models import PrefectYamlModel

    raw = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    assert "work_pools" in raw["definitions"]
    model = PrefectYamlModel.model_validate(raw)
    deployments = {d.name: d for d in model.deployments}
    assert deployments["restore-video"].entrypoint == "flows/restore_video.py:restore_video"
    assert deployments["on-ingest"].entrypoint == "flows/on_ingest.py:on_ingest"

    worker = container_by_name(find(render("gpu"), "Deployment", "prefect-worker"), "prefect-worker")
    pool = {e["name"]: e.get("value") for e in worker["env"]}["PREFECT_WORK_POOL"]
    for deployment in deployments.values():
        assert deployment.work_pool is not None
        assert deployment.work_pool.name == pool
        assert deployment.work_pool.job_variables["image"] == RESTORA_IMAGE

    restore = deployments["restore-video"]
    assert restore.work_pool is not None and restore.work_pool.work_queue_name == "gpu"
    limit = restore.concurrency_limit
    assert limit is not None and not isinstance(limit, int) and limit.limit and limit.limit >= 1


def test_worker_creates_the_gpu_queue_with_a_concurrency_limit() -> None:
    for overlay in OVERLAYS:
        docs = render(overlay)
        init = container_by_name(find(docs, "Deployment", "prefect-worker"), "sync-work-pool")
        assert int({e["name"]: e.get("value") for e in init["env"]}["GPU_QUEUE_LIMIT"]) >= 1
        script = next(d for d in docs if d["kind"] == "ConfigMap" and "bootstrap.sh" in d.get("data", {}))
        assert '--limit "$GPU_QUEUE_LIMIT"' in script["data"]["bootstrap.sh"]
        assert "--base-job-template" in script["data"]["bootstrap.sh"]


def test_base_job_template_defaults_match_the_cluster() -> None:
    template = flow_run_job.load_base_job_template()
    defaults = {k: v.get("default") for k, v in template["variables"]["properties"].items()}
    assert defaults["image"] == RESTORA_IMAGE
    assert defaults["namespace"] == "restora"
    assert defaults["service_account_name"] == "restora-flow-run"
    for name, job in flow_run_jobs().items():
        labels = job["spec"]["template"]["metadata"]["labels"]
        assert labels["app.kubernetes.io/name"] == "restora-flow-run", name
        assert job["spec"]["template"]["spec"]["automountServiceAccountToken"] is False


# --------------------------------------------------------------------------- the checks can fail


def test_checks_catch_a_missing_limit() -> None:
    docs = render("gpu")
    del container_by_name(find(docs, "Deployment", "triton"), "tritonserver")["resources"]["limits"]["memory"]
    assert resource_problems(docs) == ["Deployment/triton container tritonserver: no limits.memory"]


def test_checks_catch_root_and_privilege_escalation() -> None:
    docs = render("dev")
    minio = find(docs, "StatefulSet", "minio")
    del minio["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"]
    container = container_by_name(minio, "minio")
    del container["securityContext"]["runAsNonRoot"]
    container["securityContext"]["allowPrivilegeEscalation"] = True
    assert security_problems(docs) == [
        "StatefulSet/minio container minio: runAsNonRoot is not true",
        "StatefulSet/minio container minio: allowPrivilegeEscalation is not false",
    ]


@pytest.mark.parametrize("image", ["postgres", "postgres:latest", "registry:5000/postgres", "ghcr.io/x/y:latest"])
def test_checks_catch_unpinned_images(image: str) -> None:
    docs = render("dev")
    container_by_name(find(docs, "StatefulSet", "postgres"), "postgres")["image"] = image
    assert image_problems(docs) == [f"StatefulSet/postgres container postgres: image {image!r} is not pinned"]


def test_checks_catch_literal_credentials() -> None:
    docs = render("gpu")
    docs.append(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "leak", "namespace": "restora"},
            "stringData": {"password": "hunter2hunter2"},
            "data": {"token": base64.b64encode(b"s3cr3t-t0ken").decode()},
        }
    )
    postgres = container_by_name(find(docs, "StatefulSet", "postgres"), "postgres")
    postgres["env"] = [{"name": "POSTGRES_PASSWORD", "value": "hunter2hunter2"}]
    assert secret_problems(docs) == [
        "Secret/leak data.token holds a non-placeholder value",
        "Secret/leak stringData.password holds a non-placeholder value",
        "StatefulSet/postgres container postgres: env POSTGRES_PASSWORD is a literal value",
    ]


def test_checks_catch_an_open_triton() -> None:
    docs = [d for d in render("gpu") if not (d["kind"] == "NetworkPolicy" and d["metadata"]["name"] == "triton")]
    assert allowed_sources(docs, "triton", 8001) == set()  # default deny still holds...
    problems = network_problems(docs)
    assert "triton:8001 reachable from [], expected ['prefect-worker', 'restora-flow-run']" in problems
    docs = [d for d in docs if d["metadata"]["name"] != "default-deny-ingress"]
    assert allowed_sources(docs, "triton", 8001) == {"*"}  # ...and without it anyone may connect
    minio_policy = find(docs, "NetworkPolicy", "minio")
    minio_policy["spec"]["ingress"][0]["from"].append({"podSelector": {}})
    assert "ingest-listener" in allowed_sources(docs, "minio", 9000)


def test_base_job_template_passes_the_kubernetes_workers_manifest_check() -> None:
    """Mirror of prefect-kubernetes' KubernetesWorkerJobConfiguration job_manifest validators.

    The worker rejects a template that lacks these paths or gives them other values
    (including its quirk of parallelism/completions inside the pod spec).
    """
    import jsonpatch

    required = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"labels": {}},
        "spec": {
            "template": {
                "spec": {
                    "parallelism": 1,
                    "completions": 1,
                    "restartPolicy": "Never",
                    "containers": [{"name": "prefect-job"}],
                }
            }
        },
    }
    for name, job in flow_run_jobs().items():
        patch = list(jsonpatch.JsonPatch.from_diff(job, required))
        assert [op["path"] for op in patch if op["op"] == "add"] == [], name
        assert [op["path"] for op in patch if op["op"] == "replace"] == [], name
    quirks = flow_run_job.load_base_job_template()["job_configuration"]["job_manifest"]["spec"]["template"]["spec"]
    assert all(quirks[field] == 1 for field in flow_run_job.PREFECT_POD_SPEC_QUIRKS)


def test_ingest_listener_matches_cli_rules_and_deployment() -> None:
    """The listener's command parses with the real CLI, its rules are valid settings, its deployment exists."""
    from restora.cli import build_parser
    from restora.settings import IngestSettings

    for overlay in OVERLAYS:
        docs = render(overlay)
        c = container_by_name(find(docs, "Deployment", "ingest-listener"), "ingest-listener")
        args = build_parser().parse_args(c["command"][1:])
        assert (args.command, args.host) == ("ingest-listener", "0.0.0.0")
        assert args.port == c["ports"][0]["containerPort"]
        env = next(d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "restora-env")["data"]
        rules = IngestSettings.model_validate({"rules": json.loads(env["RESTORA_INGEST__RULES"])}).rules
        assert rules and all(r.output_bucket and r.output_bucket != r.bucket for r in rules)
        names = {e["name"] for e in c["env"]}
        assert "RESTORA_INGEST__RULES" in names and "RESTORA_INGEST__WEBHOOK_TOKEN_FILE" in names
        assert not names & {"RESTORA_STORAGE__ACCESS_KEY_FILE", "RESTORA_STORAGE__SECRET_KEY_FILE"}, "no S3 access"
    raw = yaml.safe_load((REPO_ROOT / "prefect.yaml").read_text())
    from flows.restore_video import restore_video

    [name] = [d["name"] for d in raw["deployments"] if d["entrypoint"].endswith(":restore_video")]
    assert IngestSettings().deployment == f"{restore_video.name}/{name}"
