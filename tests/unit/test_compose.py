"""docker-compose.yml agrees with the repository: every referenced file exists, ports and
listen addresses agree, URLs name services that listen there, Prometheus scrapes a service
that serves /metrics, and the worker can be scaled. (Docker itself is not run.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from diffsvc import config
from diffsvc.ops import grafana

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]


def interpolate(value: str) -> str:
    """Compose's ${VAR:-default} with no variables set."""
    return re.sub(r"\$\{[A-Z_]+:-([^}]*)\}", r"\1", value)


def env(service: str) -> dict[str, str]:
    return {k: interpolate(str(v)) for k, v in (SERVICES[service].get("environment") or {}).items()}


def host_ports(service: str) -> dict[int, int]:
    out = {}
    for spec in SERVICES[service].get("ports", []):
        host, _, container = str(spec).rpartition(":")
        out[int(container)] = int(host)
    return out


def envoy_config() -> dict[str, Any]:
    [mount] = SERVICES["envoy"]["volumes"]
    return yaml.safe_load((ROOT / mount.split(":")[0]).read_text())


def listening_port(service: str) -> set[int]:
    """The ports a service's process listens on, from its command or environment."""
    svc, e = SERVICES[service], env(service)
    ports = set()
    cmd = svc.get("command") or []
    if "--port" in cmd:
        ports.add(int(cmd[cmd.index("--port") + 1]))
    for key in ("DIFFSVC_LISTEN", "DIFFSVC_REPORT_LISTEN"):
        if key in e:
            ports.add(config.split_listen(e[key])[1])
    if service == "envoy":  # its listener, in the config file it mounts
        for listener in envoy_config()["static_resources"]["listeners"]:
            ports.add(listener["address"]["socket_address"]["port_value"])
    known = {"redis": 6379, "prometheus": 9090, "grafana": 3000}
    if service in known:
        ports.add(known[service])
    return ports


def test_every_referenced_file_exists():
    for name, svc in SERVICES.items():
        if "build" in svc:
            context = ROOT / (svc["build"] if isinstance(svc["build"], str)
                              else svc["build"]["context"])
            assert (context / "Dockerfile").is_file(), name
        for volume in svc.get("volumes", []):
            source = volume.split(":")[0]
            assert source.startswith("./"), f"{name}: {volume} is not a repository path"
            assert (ROOT / source).exists(), f"{name}: {source} missing"
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            for source in line.split()[1:-1]:
                assert (ROOT / source).exists(), f"Dockerfile: {source} missing"


def test_published_ports_are_the_ones_listened_on():
    for name in SERVICES:
        for container_port in host_ports(name):
            assert container_port in listening_port(name), f"{name}: publishes {container_port}"
    assert set(host_ports("gateway")) == {8080} and set(host_ports("report")) == {8081}


def test_urls_name_services_listening_on_that_port():
    urls = []
    for name in SERVICES:
        for key, value in env(name).items():
            if re.match(r"^(https?|redis)://", value):
                urls.append((f"{name}.{key}", value))
    traffic = " ".join(SERVICES["traffic"]["command"])
    urls += [("traffic", u) for u in re.findall(r"http://[\w.-]+:\d+", traffic)]
    datasource = yaml.safe_load((ROOT / "dashboards/grafana/provisioning/datasources/"
                                 "diffsvc.yaml").read_text())
    urls += [("grafana datasource", d["url"]) for d in datasource["datasources"]]
    assert len(urls) >= 6
    for where, url in urls:
        parts = urlsplit(url)
        assert parts.hostname in SERVICES, f"{where}: {url} names no service"
        assert parts.port in listening_port(parts.hostname), f"{where}: {url} wrong port"


def test_prometheus_scrapes_the_report_server_with_its_token():
    prom = yaml.safe_load((ROOT / "dashboards/prometheus/prometheus.yml").read_text())
    targets = [t for job in prom["scrape_configs"] for sc in job["static_configs"]
               for t in sc["targets"]]
    assert targets == ["report:8081"]
    host, port = targets[0].split(":")
    assert SERVICES[host]["command"] == ["serve"] and int(port) in listening_port(host)
    job = prom["scrape_configs"][0]
    assert job["metrics_path"] == "/metrics"
    token_file = job["authorization"]["credentials_file"]
    [cfg] = SERVICES["prometheus"]["configs"]
    assert cfg["target"] == token_file == grafana.REPORT_TOKEN_FILE
    # the token Prometheus sends is the one the report server requires
    assert interpolate(COMPOSE["configs"][cfg["source"]]["content"]) == \
        env("report")["DIFFSVC_REPORT_TOKEN"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["prometheus"]["volumes"]}
    assert mounts["/etc/prometheus/prometheus.yml"] == "./dashboards/prometheus/prometheus.yml"
    rules_dir = mounts[prom["rule_files"][0].rsplit("/", 1)[0]]
    assert list((ROOT / rules_dir).glob("*.yml"))


def test_grafana_mounts_the_provisioning_and_the_dashboard_path():
    mounts = {v.split(":")[1]: v.split(":")[0] for v in SERVICES["grafana"]["volumes"]}
    provider = yaml.safe_load((ROOT / "dashboards/grafana/provisioning/dashboards/"
                               "diffsvc.yaml").read_text())
    path = provider["providers"][0]["options"]["path"]
    assert path in mounts and list((ROOT / mounts[path]).glob("*.json"))
    assert (ROOT / mounts["/etc/grafana/provisioning"] / "alerting/diffsvc.yaml").is_file()


def test_worker_scales_and_the_stack_config_loads():
    worker = SERVICES["worker"]
    assert "ports" not in worker and "container_name" not in worker
    assert worker["command"] == ["worker"]
    cfg = config.load(ROOT / "docker/diffsvc.yaml", env={})
    assert "$.request_id" in cfg.ignore["fields"] and cfg.notify_threshold == 0.05
    for name in ("gateway", "worker", "report"):
        e = env(name)
        assert e["DIFFSVC_CONFIG"] == "/etc/diffsvc/config.yaml"
        overrides = {k.removeprefix("DIFFSVC_"): v for k, v in e.items()}
        config.load(ROOT / "docker/diffsvc.yaml", env={f"DIFFSVC_{k}": v
                                                       for k, v in overrides.items()
                                                       if k != "CONFIG"})


@pytest.mark.parametrize("service", ["gateway", "worker", "report"])
def test_commands_are_diffsvc_subcommands(service):
    from diffsvc import cli

    [command] = SERVICES[service]["command"]
    assert command in cli.build_parser()._subparsers._group_actions[0].choices  # type: ignore[union-attr]


def test_envoy_variant_ships_to_the_collector() -> None:
    """--profile envoy: Envoy in front of prod, with the config `proxy-config envoy` prints
    for these services, shipping to a collect-mode gateway with the same token."""
    from diffsvc.ops.proxyconfig import Options, render

    collector, envoy = env("collector"), SERVICES["envoy"]
    assert collector["DIFFSVC_MODE"] == "collect" and SERVICES["collector"]["command"] == ["gateway"]
    assert envoy["profiles"] == SERVICES["collector"]["profiles"] == ["envoy"]
    assert "profiles" not in SERVICES["gateway"]  # the default stack is unchanged
    [mount] = envoy["volumes"]
    source, target = mount.split(":")[:2]
    assert envoy["command"] == ["envoy", "-c", target]
    port = next(iter(host_ports("envoy")))
    expected = render(Options("envoy", f"http://collector:{config.split_listen(collector['DIFFSVC_LISTEN'])[1]}",
                              f"0.0.0.0:{port}", env("gateway")["DIFFSVC_PRIMARY"],
                              token=collector["DIFFSVC_COLLECT_TOKEN"]))
    assert (ROOT / source).read_text() == expected, "regenerate: see docker-compose.yml's header"
