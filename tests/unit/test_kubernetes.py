"""deploy/kubernetes: the base and the example overlay are valid Kubernetes objects
(kubernetes-validate, strict), custom resources (KEDA ScaledObject, Istio EnvoyFilter) use
only their documented fields, and the parts agree with each other and with diffsvc: commands
parse, settings load, Services select pods and ports, the queue is diffsvc's, and the
EnvoyFilter is what `diffsvc proxy-config istio` prints. (kustomize itself is not run: the
overlay is applied here as kustomize would, by resource, patch and namespace.)"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

from diffsvc import cli, config
from diffsvc.ops.proxyconfig import Options, render
from diffsvc.storage import keys

kubernetes_validate = pytest.importorskip("kubernetes_validate",
                                          reason="pip install kubernetes-validate")

ROOT = Path(__file__).resolve().parents[2] / "deploy" / "kubernetes"
K8S_VERSION = "1.30.0"
SCALED_OBJECT = {"spec": {"scaleTargetRef", "pollingInterval", "cooldownPeriod",
                          "initialCooldownPeriod", "idleReplicaCount", "minReplicaCount",
                          "maxReplicaCount", "fallback", "advanced", "triggers"},
                 "trigger": {"type", "metadata", "name", "authenticationRef", "metricType",
                             "useCachedMetrics"},
                 "redis": {"address", "addressFromEnv", "host", "hostFromEnv", "port",
                           "portFromEnv", "listName", "listLength", "activationListLength",
                           "databaseIndex", "enableTLS", "unsafeSsl", "usernameFromEnv",
                           "passwordFromEnv"}}
ENVOY_FILTER = {"spec": {"workloadSelector", "targetRefs", "configPatches", "priority"},
                "patch": {"applyTo", "match", "patch"},
                "applyTo": {"LISTENER", "FILTER_CHAIN", "NETWORK_FILTER", "HTTP_FILTER",
                            "ROUTE_CONFIGURATION", "VIRTUAL_HOST", "HTTP_ROUTE", "CLUSTER",
                            "EXTENSION_CONFIG", "BOOTSTRAP", "LISTENER_FILTER"},
                "context": {"ANY", "SIDECAR_INBOUND", "SIDECAR_OUTBOUND", "GATEWAY"},
                "operation": {"MERGE", "ADD", "REMOVE", "INSERT_BEFORE", "INSERT_AFTER",
                              "INSERT_FIRST", "REPLACE"}}


def merge(base: Any, patch: Any) -> Any:
    if isinstance(base, dict) and isinstance(patch, dict):
        return {**base, **{k: merge(base.get(k), v) for k, v in patch.items()}}
    return patch


def build(directory: Path) -> list[dict[str, Any]]:
    """The objects a kustomization yields: its resources (directories recursively), its
    patches (by kind and name), its secretGenerator, its namespace and images."""
    kz = yaml.safe_load((directory / "kustomization.yaml").read_text())
    objects: list[dict[str, Any]] = []
    for res in kz.get("resources", []):
        path = directory / res
        objects += build(path) if path.is_dir() else list(yaml.safe_load_all(path.read_text()))
    for p in kz.get("patches", []):
        patch = yaml.safe_load((directory / p["path"]).read_text())
        [i] = [i for i, o in enumerate(objects) if (o["kind"], o["metadata"]["name"]) ==
               (patch["kind"], patch["metadata"]["name"])]
        objects[i] = merge(objects[i], patch)
    for gen in kz.get("secretGenerator", []):
        data = dict(lit.split("=", 1) for lit in gen["literals"])
        objects.append({"apiVersion": "v1", "kind": "Secret", "metadata": {"name": gen["name"]},
                        "type": "Opaque", "stringData": data})
    images = {i["name"]: f"{i['newName']}:{i['newTag']}" for i in kz.get("images", [])}
    for o in objects:
        if "namespace" in kz:
            o["metadata"]["namespace"] = kz["namespace"]
        for c in pod_spec(o).get("containers", []):
            c["image"] = images.get(c["image"], c["image"])
    return objects


def pod_spec(o: dict[str, Any]) -> dict[str, Any]:
    return o.get("spec", {}).get("template", {}).get("spec", {})


OBJECTS = build(ROOT / "overlays" / "example")
BY = {(o["kind"], o["metadata"]["name"]): o for o in OBJECTS}


def diffsvc_containers() -> list[dict[str, Any]]:
    return [c for o in OBJECTS for c in pod_spec(o).get("containers", [])
            if "diffsvc" in c["image"]]


def test_builtin_objects_are_valid_kubernetes() -> None:
    builtin = [o for o in OBJECTS if "." not in o["apiVersion"].split("/")[0]
               or o["apiVersion"].startswith("apps/")]
    assert {o["kind"] for o in builtin} == {"ConfigMap", "Deployment", "Service", "StatefulSet",
                                            "Secret"}
    for o in builtin:
        kubernetes_validate.validate(o, K8S_VERSION, strict=True)


def test_bad_object_is_refused_by_the_validator() -> None:
    bad = merge(BY["Deployment", "diffsvc-worker"], {"spec": {"replicas": "many"}})
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(bad, K8S_VERSION, strict=True)


def test_scaled_object_scales_the_workers_on_diffsvc_queue() -> None:
    so = BY["ScaledObject", "diffsvc-worker"]
    assert so["apiVersion"] == "keda.sh/v1alpha1"
    assert set(so["spec"]) <= SCALED_OBJECT["spec"]
    assert ("Deployment", so["spec"]["scaleTargetRef"]["name"]) in BY
    [trigger] = so["spec"]["triggers"]
    assert set(trigger) <= SCALED_OBJECT["trigger"] and trigger["type"] == "redis"
    meta = trigger["metadata"]
    assert set(meta) <= SCALED_OBJECT["redis"]
    assert all(isinstance(v, str) for v in meta.values())  # KEDA's metadata is strings
    assert meta["listName"] == f"rq:queue:{keys.QUEUE_NAME}"
    host, port = meta["address"].split(":")
    assert port in service_ports(host)


def test_envoy_filter_is_what_proxy_config_prints() -> None:
    ef = BY["EnvoyFilter", "diffsvc-ship"]
    assert set(ef["spec"]) <= ENVOY_FILTER["spec"]
    for patch in ef["spec"]["configPatches"]:
        assert set(patch) <= ENVOY_FILTER["patch"]
        assert patch["applyTo"] in ENVOY_FILTER["applyTo"]
        assert patch["match"]["context"] in ENVOY_FILTER["context"]
        assert patch["patch"]["operation"] in ENVOY_FILTER["operation"]
    secret = BY["Secret", "diffsvc-tokens"]["stringData"]
    collector = f"http://diffsvc-collector.{ef['metadata']['namespace']}.svc.cluster.local:9090"
    label, value = next(iter(ef["spec"]["workloadSelector"]["labels"].items()))
    expected = render(Options("istio", collector, selector=f"{label}={value}",
                              token=secret["collect-token"]))
    ef_file = ROOT / "overlays" / "example" / "envoyfilter.yaml"
    assert ef_file.read_text() == expected, "regenerate it: see the overlay's kustomization"


def service_ports(name: str) -> set[str]:
    return {str(p["port"]) for p in BY["Service", name]["spec"]["ports"]}


def test_services_select_pods_that_listen_on_their_target_ports() -> None:
    for (kind, name), svc in BY.items():
        if kind != "Service":
            continue
        pods = [o for o in OBJECTS if o["kind"] in ("Deployment", "StatefulSet") and
                svc["spec"]["selector"].items() <= o["spec"]["template"]["metadata"]["labels"]
                .items()]
        assert len(pods) == 1, name
        ports = {p["name"] for c in pod_spec(pods[0])["containers"] for p in c.get("ports", [])}
        assert {p["targetPort"] for p in svc["spec"]["ports"]} <= ports, name


def test_diffsvc_commands_parse_and_settings_load() -> None:
    settings = yaml.safe_load(BY["ConfigMap", "diffsvc-config"]["data"]["config.yaml"])
    parser = cli.build_parser()
    containers = diffsvc_containers()
    assert {c["args"][0] for c in containers} == {"gateway", "worker", "serve"}
    for c in containers:
        args = parser.parse_args(c["args"])
        env = {e["name"]: e.get("value", "x" * 16) for e in c.get("env", [])}
        assert env.pop("DIFFSVC_CONFIG") == c["volumeMounts"][0]["mountPath"] + "/config.yaml"
        assert set(env) <= {config.env_name(k) for k in config.SETTINGS}
        flags = {k.split(":", 1)[1]: v for k, v in vars(args).items()
                 if k.startswith("setting:") and v is not None}
        cfg = config.load(None, env=env, overrides={**settings, **flags})
        listen = flags.get("listen") or getattr(args, "listen", None) or "0.0.0.0:"
        assert listen.startswith("0.0.0.0:")  # reachable in the pod
        if args.command == "gateway":
            from diffsvc.gateway import collect

            collect.check_access(cfg)  # listens beyond loopback: the token is set
            ports = {str(p["containerPort"]) for p in c["ports"]}
            assert listen.rpartition(":")[2] in ports
    for url in (settings["redis_url"], settings["candidate"]):
        host = urlsplit(url).hostname
        if ("Service", host) in BY:
            assert str(urlsplit(url).port) in service_ports(str(host))
    assert re.fullmatch(r"http://[\w-]+:\d+", settings["candidate"])
