"""The Kubernetes manifests and the Dockerfile: valid, safe, and pointing at real things.

Validated offline against the Kubernetes OpenAPI schemas bundled with `kubernetes-validate`.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import click
import kubernetes_validate
import pytest
import yaml

from service.app import create_app
from service.cli import cli
from service.metrics import Metrics, MetricsServer
from service.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "k8s"
KUSTOMIZATIONS = [K8S, K8S / "base", K8S / "dev"]
KUBERNETES_VERSION = "1.32"
PLACEHOLDER = "CHANGE-ME"


def documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def manifests() -> Iterator[tuple[Path, dict[str, Any]]]:
    for path in sorted(K8S.rglob("*.yaml")):
        if path.name != "kustomization.yaml":
            for doc in documents(path):
                yield path, doc


def base_resources() -> list[dict[str, Any]]:
    return [doc for path, doc in manifests() if path.parent.name == "base"]


def pod_templates() -> Iterator[tuple[str, dict[str, Any]]]:
    for _, doc in manifests():
        if doc["kind"] in ("Deployment", "StatefulSet", "Job"):
            yield doc["metadata"]["name"], doc["spec"]["template"]["spec"]


def containers(pod: dict[str, Any]) -> list[dict[str, Any]]:
    return [*pod.get("initContainers", []), *pod["containers"]]


def workload(name: str) -> dict[str, Any]:
    return next(
        d for d in base_resources() if d["kind"] == "Deployment" and d["metadata"]["name"] == name
    )


def test_every_manifest_is_valid_against_the_kubernetes_schemas() -> None:
    checked = 0
    for path, doc in manifests():
        try:
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{path.relative_to(ROOT)} {doc['kind']}: {error.message}")
        checked += 1
    assert checked >= 15


def test_each_kustomization_lists_exactly_the_files_beside_it() -> None:
    for folder in KUSTOMIZATIONS:
        kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
        listed = set(kustomization.get("resources", []))
        listed |= {patch["path"] for patch in kustomization.get("patches", [])}
        files = {p.name for p in folder.glob("*.yaml")} - {"kustomization.yaml"}
        folders = {r for r in listed if (folder / r).is_dir()}
        assert listed - folders == files, folder
        for sub in folders:
            assert (folder / sub / "kustomization.yaml").exists()


def test_the_base_has_every_part_of_the_deployment() -> None:
    kinds = sorted(d["kind"] for d in base_resources())
    for kind in (
        "Namespace",
        "ConfigMap",
        "Secret",
        "Job",
        "Deployment",
        "Service",
        "PodDisruptionBudget",
        "HorizontalPodAutoscaler",
        "NetworkPolicy",
    ):
        assert kind in kinds
    api, projector, scheduler = (workload(f"troth-{n}") for n in ("api", "projector", "scheduler"))
    assert api["spec"]["replicas"] == 3
    assert projector["spec"]["replicas"] == 1
    assert projector["spec"]["strategy"]["type"] == "Recreate"
    assert scheduler["spec"]["replicas"] == 2
    hpa = next(d for d in base_resources() if d["kind"] == "HorizontalPodAutoscaler")
    assert hpa["spec"]["scaleTargetRef"]["name"] == "troth-api"
    assert hpa["spec"]["minReplicas"] == api["spec"]["replicas"]
    for container in api["spec"]["template"]["spec"]["containers"]:
        assert container["resources"]["requests"]
        assert container["resources"]["limits"]["memory"]


def test_every_pod_runs_as_non_root_on_a_read_only_root_without_privilege_escalation() -> None:
    pods = dict(pod_templates())
    assert {"troth-api", "troth-projector", "troth-scheduler", "troth-migrate"} <= set(pods)
    assert "troth-postgres" in pods
    for name, pod in pods.items():
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] > 0, name
        for container in containers(pod):
            context = container["securityContext"]
            assert context["readOnlyRootFilesystem"] is True, (name, container["name"])
            assert context["allowPrivilegeEscalation"] is False, (name, container["name"])
            assert context["capabilities"]["drop"] == ["ALL"], (name, container["name"])


def test_only_the_api_takes_ingress_and_only_the_scheduler_reaches_https() -> None:
    policies = [d for d in base_resources() if d["kind"] == "NetworkPolicy"]
    deny = next(p for p in policies if p["spec"]["podSelector"] == {})
    assert set(deny["spec"]["policyTypes"]) == {"Ingress", "Egress"}
    assert "ingress" not in deny["spec"]
    assert "egress" not in deny["spec"]
    ingress = [p for p in policies if p["spec"].get("ingress")]
    assert [
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in ingress
    ] == ["api"]
    https = [
        p
        for p in policies
        for rule in p["spec"].get("egress", [])
        for port in rule.get("ports", [])
        if port["port"] == 443
    ]
    assert [
        p["spec"]["podSelector"]["matchLabels"]["app.kubernetes.io/component"] for p in https
    ] == ["scheduler"]
    postgres = [
        p
        for p in policies
        for rule in p["spec"].get("egress", [])
        for port in rule.get("ports", [])
        if port["port"] == 5432
    ]
    assert postgres
    assert postgres[0]["spec"]["podSelector"]["matchLabels"] == {"app.kubernetes.io/name": "troth"}


def dockerfile_final_stage() -> list[str]:
    text = (ROOT / "Dockerfile").read_text()
    stages = re.split(r"(?m)^FROM ", text)
    return [line.strip() for line in stages[-1].splitlines() if line.strip()]


def dockerfile_instruction(name: str) -> str:
    lines = [line for line in dockerfile_final_stage() if line.startswith(name + " ")]
    assert len(lines) == 1, name
    return lines[0].removeprefix(name + " ")


def test_every_container_command_is_a_real_troth_subcommand() -> None:
    entrypoint = json.loads(dockerfile_instruction("ENTRYPOINT"))
    assert json.loads(dockerfile_instruction("CMD")) == ["api"]
    assert entrypoint == ["troth"]
    commands = [
        container["command"]
        for name, pod in pod_templates()
        if name != "troth-postgres"
        for container in containers(pod)
    ]
    assert ["troth", "scheduler"] in commands
    for command in commands:
        assert command[0] == entrypoint[0]
        group: click.Command = cli
        args = command[1:]
        context = click.Context(group, info_name="troth")
        while isinstance(group, click.Group) and args and not args[0].startswith("-"):
            sub = group.get_command(context, args[0])
            assert sub is not None, f"`{' '.join(command)}`: no such command {args[0]!r}"
            group, args = sub, args[1:]
        # Parse the options as the process would (an unknown option raises).
        group.make_context(command[-1], list(args))


def test_the_image_runs_as_the_manifests_non_root_user_with_no_build_tools() -> None:
    user = dockerfile_instruction("USER")
    uid, _, gid = user.partition(":")
    assert int(uid) > 0
    for name, pod in pod_templates():
        if name != "troth-postgres":
            assert pod["securityContext"]["runAsUser"] == int(uid), name
            assert pod["securityContext"]["runAsGroup"] == int(gid), name
    final = "\n".join(dockerfile_final_stage())
    assert final.startswith("python:")
    assert "-slim" in final.splitlines()[0]
    for tool in ("gcc", "build-essential", "apt-get install", "pip install"):
        assert tool not in final


def test_probes_point_at_endpoints_that_answer() -> None:
    app = create_app(Settings(database_url="memory:"))
    routes = {rule.rule for rule in app.url_map.iter_rules()}
    api = workload("troth-api")["spec"]["template"]["spec"]["containers"][0]
    api_paths = {api[p]["httpGet"]["path"] for p in api if p.endswith("Probe")}
    assert api_paths == {"/healthz", "/readyz"}
    assert api_paths <= routes
    with app.test_client() as client:
        for path in api_paths:
            assert client.get(path).status_code == 200
    config = next(d for d in base_resources() if d["kind"] == "ConfigMap")["data"]
    for name in ("troth-projector", "troth-scheduler"):
        # Their listener (`TROTH_METRICS_PORT`) serves the liveness probe.
        container = workload(name)["spec"]["template"]["spec"]["containers"][0]
        path = container["livenessProbe"]["httpGet"]["path"]
        assert container["ports"][0]["containerPort"] == int(config["TROTH_METRICS_PORT"])
        server = MetricsServer(Metrics(), "token", "127.0.0.1", 0).start()
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{server.port}{path}", timeout=5) as r:
                assert r.status == 200
        finally:
            server.stop()


def test_configured_settings_are_real_settings() -> None:
    config = next(d for d in base_resources() if d["kind"] == "ConfigMap")["data"]
    secret = next(d for d in base_resources() if d["kind"] == "Secret")["stringData"]
    settings = Settings.from_env({**config, **secret})
    assert settings.port == int(config["TROTH_PORT"])
    assert settings.metrics_port == int(config["TROTH_METRICS_PORT"])
    assert settings.metrics_dir == config["PROMETHEUS_MULTIPROC_DIR"]
    assert settings.database.kind == "postgres"
    known = {f"TROTH_{name.upper()}" for name in Settings.__dataclass_fields__}
    for name in {**config, **secret}:
        assert name in known or name == "PROMETHEUS_MULTIPROC_DIR", name


def test_no_secret_holds_a_real_looking_credential() -> None:
    secrets = [doc for _, doc in manifests() if doc["kind"] == "Secret"]
    assert len(secrets) == 2
    for secret in secrets:
        assert "data" not in secret  # base64 would hide what is in it
        for name, value in secret["stringData"].items():
            assert value == "" or PLACEHOLDER in value, name
            # Whatever surrounds the placeholder is no token or key either.
            assert not re.search(r"[A-Za-z0-9+/=_]{16,}", value.replace(PLACEHOLDER, "")), name
            password = re.match(r"postgres(?:ql)?://[^:]+:([^@]*)@", value)
            if password:
                assert PLACEHOLDER in password.group(1), name


@pytest.mark.skipif(shutil.which("kubectl") is None, reason="kubectl (its kustomize) not here")
@pytest.mark.parametrize("folder", ["k8s", "k8s/dev"])
def test_kustomize_renders_valid_manifests(folder: str) -> None:
    rendered = subprocess.run(
        ["kubectl", "kustomize", str(ROOT / folder)], check=True, capture_output=True, text=True
    ).stdout
    docs = [doc for doc in yaml.safe_load_all(rendered) if doc]
    for doc in docs:
        kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
        if doc["kind"] != "Namespace":
            assert doc["metadata"]["namespace"] == "troth", doc["metadata"]["name"]
    names = {(d["kind"], d["metadata"]["name"]) for d in docs}
    assert ("Deployment", "troth-api") in names
    if folder.endswith("dev"):
        assert ("StatefulSet", "troth-postgres") in names
        secret = next(d for d in docs if d["kind"] == "Secret")["stringData"]
        assert "troth-postgres" in secret["TROTH_DATABASE_URL"]
        assert "TROTH_ADMIN_TOKEN" in secret
