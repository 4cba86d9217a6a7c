"""Static checks of what cannot run here (no Docker engine, no cluster): the Kubernetes
manifests as kustomize renders them validate strictly against the Kubernetes schemas, the YAML
is clean, the compose files parse and agree with the binary, and the image's command, ports and
health check agree with the binary's real subcommands and defaults (read from the binary)."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
BIN_DIR = Path(os.environ.get("GB_BIN_DIR", ROOT / "target" / "debug"))
BINARY = str(BIN_DIR / "gemini-balance")
VENV_BIN = Path(sys.executable).parent


def tool(name: str) -> str:
    installed = VENV_BIN / name
    return str(installed) if installed.exists() else name


def run(*command, **kwargs) -> str:
    result = subprocess.run(command, capture_output=True, text=True, **kwargs)
    assert result.returncode == 0, f"{command} failed:\n{result.stdout}\n{result.stderr}"
    return result.stdout


@pytest.fixture(scope="module")
def defaults():
    """The binary's own defaults, with no setting given."""
    env = {"PATH": os.environ.get("PATH", "")}
    return json.loads(run(BINARY, "show-settings", env=env, cwd="/"))


@pytest.fixture(scope="module")
def subcommands():
    help_text = run(BINARY, "--help")
    commands = re.findall(r"^  ([a-z-]+)\s", help_text.split("Commands:")[1].split("Options:")[0], re.M)
    assert {"gateway", "chat", "keys", "config", "logging", "files", "probe"} <= set(commands)
    return set(commands)


# Every service of the microservice mode, as Deployment, compose service and subcommand.
SERVICES = ["gateway", "chat", "keys", "config", "logging", "files"]


def port_of(address: str) -> int:
    return int(address.rsplit(":", 1)[1])


@pytest.mark.parametrize("overlay", ["dev", "prod"])
def test_manifests_render_and_validate(overlay, tmp_path):
    rendered = run(tool("kubectl"), "kustomize", str(ROOT / "k8s" / "overlays" / overlay))
    documents = [document for document in yaml.safe_load_all(rendered) if document]
    kinds = sorted({document["kind"] for document in documents})
    for expected in ["ConfigMap", "Deployment", "HorizontalPodAutoscaler", "Ingress", "Namespace",
                     "NetworkPolicy", "PodDisruptionBudget", "Secret", "Service"]:
        assert expected in kinds, f"{expected} missing from {overlay}"
    path = tmp_path / f"{overlay}.yaml"
    path.write_text(rendered)
    output = run(tool("kubernetes-validate"), "--strict", str(path))
    assert "failed" not in output.lower()
    namespaces = {document["metadata"].get("namespace") for document in documents if document["kind"] != "Namespace"}
    assert len(namespaces) == 1, f"one namespace per overlay, got {namespaces}"


def test_cluster_extras_validate():
    output = run(tool("kubernetes-validate"), "--strict", str(ROOT / "deploy" / "jaeger.yaml"), str(ROOT / "deploy" / "postgres.yaml"))
    assert "failed" not in output.lower()


def test_yaml_is_clean():
    run(tool("yamllint"), "-s", "-c", str(ROOT / ".yamllint.yaml"), "k8s", "docker", "deploy", cwd=ROOT)


def rendered_deployments():
    rendered = run(tool("kubectl"), "kustomize", str(ROOT / "k8s" / "overlays" / "prod"))
    return {document["metadata"]["name"]: document for document in yaml.safe_load_all(rendered)
            if document and document["kind"] == "Deployment"}


def test_deployments_agree_with_the_binary(defaults, subcommands):
    expected_ports = {name: port_of(defaults[f"{name.upper()}_ADDR"]) for name in SERVICES}
    metrics_port = port_of(defaults["METRICS_ADDR"])
    deployments = rendered_deployments()
    assert set(deployments) == set(SERVICES)
    for name, deployment in deployments.items():
        pod = deployment["spec"]["template"]["spec"]
        container = pod["containers"][0]
        assert container["args"] == [name] and name in subcommands
        ports = {port["name"]: port["containerPort"] for port in container["ports"]}
        assert ports["metrics"] == metrics_port
        service_port = ports["http"] if name == "gateway" else ports["grpc"]
        assert service_port == expected_ports[name]
        probe = container["readinessProbe"]
        if name == "gateway":
            assert probe["httpGet"]["path"] == "/health"
        else:
            assert probe["grpc"]["port"] == expected_ports[name], "gRPC health probe on the service port"
        security = container["securityContext"]
        assert security["readOnlyRootFilesystem"] is True and security["allowPrivilegeEscalation"] is False
        assert pod["securityContext"]["runAsNonRoot"] is True
        assert container["resources"]["requests"] and container["resources"]["limits"]
    assert deployments["keys"]["spec"]["replicas"] == 1, "the pool's state has one owner"
    assert deployments["config"]["spec"]["replicas"] == 1, "changes are serialised by one owner"


def test_configmap_urls_point_at_the_services(defaults):
    configmap = yaml.safe_load((ROOT / "k8s" / "base" / "configmap.yaml").read_text())["data"]
    assert configmap["CHAT_URL"] == f"http://chat:{port_of(defaults['CHAT_ADDR'])}"
    for name in ["chat", "keys", "config", "logging", "files"]:
        assert configmap[f"{name.upper()}_URL"] == f"http://{name}:{port_of(defaults[f'{name.upper()}_ADDR'])}"
    assert configmap["OTEL_EXPORTER_OTLP_ENDPOINT"].endswith(":4317")
    secret = yaml.safe_load((ROOT / "k8s" / "base" / "secret.yaml").read_text())["stringData"]
    assert set(secret) == {"API_KEYS", "ALLOWED_TOKENS", "AUTH_TOKEN", "ENCRYPTION_KEY", "DATABASE_URL",
                           "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"}
    assert configmap["FILES_STORE"].startswith("s3://"), "files replicas share a bucket"
    assert all("REPLACE" in value for value in secret.values()), "no real secret committed"


def test_image_agrees_with_the_binary(defaults, subcommands):
    dockerfile = (ROOT / "docker" / "Dockerfile").read_text()
    exposed = {int(port) for port in re.search(r"^EXPOSE (.+)$", dockerfile, re.M).group(1).split()}
    assert exposed == {port_of(defaults[f"{name.upper()}_ADDR"]) for name in [*SERVICES, "metrics"]}
    for setting in [f"{name.upper()}_ADDR" for name in [*SERVICES, "metrics"]]:
        value = re.search(rf"{setting}=(\S+)", dockerfile).group(1)
        assert value == defaults[setting], f"{setting} in the image differs from the binary's default"
    assert re.search(r'^ENTRYPOINT \["gemini-balance"\]$', dockerfile, re.M)
    healthcheck = re.search(r'CMD \["gemini-balance", "probe", "(\w+)"\]', dockerfile).group(1)
    assert "probe" in subcommands and healthcheck == "gateway"
    assert re.search(r"^USER 10001", dockerfile, re.M), "the image runs as a non-root user"
    assert "--bin gemini-balance" in dockerfile
    run(BINARY, "probe", "--help")


def test_compose_files_agree_with_the_binary(defaults, subcommands):
    compose = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
    services = compose["services"]
    assert {"postgres", "jaeger", *SERVICES} <= set(services)
    for name in SERVICES:
        service = services[name]
        assert service["command"] == [name] and name in subcommands
        assert service["healthcheck"]["test"] == ["CMD", "gemini-balance", "probe", name]
        assert service["build"]["dockerfile"] == "docker/Dockerfile"
        assert service["environment"]["OTEL_EXPORTER_OTLP_ENDPOINT"] == "http://jaeger:4317"
        assert service["environment"]["DATABASE_URL"].startswith("postgres://")
    for name in ["chat", "keys", "config", "logging", "files"]:
        assert services["gateway"]["environment"][f"{name.upper()}_URL"] == f"http://{name}:{port_of(defaults[f'{name.upper()}_ADDR'])}"
    assert services["gateway"]["ports"] == [f"{port_of(defaults['GATEWAY_ADDR'])}:{port_of(defaults['GATEWAY_ADDR'])}"]
    single = yaml.safe_load((ROOT / "docker" / "compose.all-in-one.yaml").read_text())["services"]["gemini-balance"]
    assert "command" not in single, "no subcommand: everything in one process"
    assert single["volumes"] == ["gemini-balance-data:/app/data"]


def test_env_example_is_accepted_by_the_binary():
    env = {"PATH": os.environ.get("PATH", "")}
    for line in (ROOT / "deploy" / "env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, value = line.split("=", 1)
            env[name] = value.split("  #")[0].strip()
    settings = json.loads(run(BINARY, "show-settings", env=env, cwd="/"))
    assert len(settings["API_KEYS"]) == 2 and settings["AUTH_TOKEN"] != ""
