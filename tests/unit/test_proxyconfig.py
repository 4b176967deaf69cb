"""`diffsvc proxy-config`: the configs are complete, the copied part is marked, and wrong
flags are refused naming the flag. (Running them: tests/proxies.)"""

from __future__ import annotations

import re

import pytest
import yaml

from diffsvc.cli import main
from diffsvc.gateway.collectwire import EXCHANGES_PATH
from diffsvc.ops.proxyconfig import Options, UsageError, render

FRONT = {"listen": "0.0.0.0:8080", "primary": "http://10.0.0.2:8000"}


def lua_of(doc: dict) -> str:
    [listener] = doc["static_resources"]["listeners"]
    filters = listener["filter_chains"][0]["filters"][0]["typed_config"]["http_filters"]
    return filters[0]["typed_config"]["default_source_code"]["inline_string"]


def test_envoy_bootstrap() -> None:
    text = render(Options("envoy", "http://collector.internal:9090", sample_rate=0.25,
                          token="abc", **FRONT))
    doc = yaml.safe_load(text)
    hcm = doc["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    assert hcm["generate_request_id"] is False
    assert hcm["server_header_transformation"] == "PASS_THROUGH"
    clusters = {c["name"]: c for c in doc["static_resources"]["clusters"]}
    assert clusters["diffsvc_collector"]["type"] == "STRICT_DNS"  # a name, resolved by Envoy
    assert clusters["primary"]["type"] == "STATIC"
    assert "circuit_breakers" in clusters["diffsvc_collector"]
    lua = lua_of(doc)
    assert "local SAMPLE_RATE = 0.25" in lua and 'local TOKEN = "abc"' in lua
    assert f'local PATH = "{EXCHANGES_PATH}"' in lua and "{{" not in text
    assert "bodyChunks" in lua and ":body()" not in lua  # streamed, never buffered
    assert text.count("diffsvc BEGIN") == text.count("diffsvc END") == 2


def test_nginx_conf_runs_from_a_prefix() -> None:
    text = render(Options("nginx", "http://10.0.0.9:9090", **FRONT))
    assert "load_module /usr/lib/nginx/modules/ndk_http_module.so;" in text
    assert "load_module /usr/lib/nginx/modules/ngx_http_lua_module.so;" in text
    directives = [line.strip() for line in text.splitlines() if not line.strip().startswith("#")]
    assert not any(d.startswith("daemon") for d in directives)
    temp_paths = [d for d in directives if re.match(r"\w+_temp_path ", d)]
    assert len(temp_paths) == 5 and not any(" /" in d for d in temp_paths)
    assert "listen 0.0.0.0:8080;" in text and "server 10.0.0.2:8000;" in text
    assert "client_max_body_size 0;" in text and "resolver" not in text
    assert text.count("diffsvc BEGIN") == 2 and "{{" not in text


def test_istio_envoy_filter() -> None:
    text = render(Options("istio", "http://diffsvc.diffsvc.svc.cluster.local:9090",
                          selector="app=shop"))
    doc = yaml.safe_load(text)
    assert doc["kind"] == "EnvoyFilter" and doc["spec"]["workloadSelector"]["labels"] == {
        "app": "shop"}
    [patch] = doc["spec"]["configPatches"]
    assert patch["match"]["context"] == "SIDECAR_INBOUND"
    lua = patch["patch"]["value"]["typed_config"]["default_source_code"]["inline_string"]
    assert 'local COLLECTOR = "outbound|9090||diffsvc.diffsvc.svc.cluster.local"' in lua
    assert "local KEEP_MARK = true" in lua


@pytest.mark.parametrize(("opts", "flag"), [
    (Options("envoy", "http://c:9/path", **FRONT), "--collector"),
    (Options("envoy", "https://c:9", **FRONT), "--collector"),
    (Options("nginx", "http://c:9", listen="0.0.0.0:80"), "--primary"),
    (Options("nginx", "http://collector:9", **FRONT), "--resolver"),
    (Options("istio", "http://c:9"), "--selector"),
    (Options("envoy", "http://c:9", listen="8080", primary="http://p:1"), "--listen"),
    (Options("envoy", "http://c:9", sample_rate=2, **FRONT), "--sample-rate"),
    (Options("envoy", "http://c:9", token='a"b', **FRONT), "--token"),
])
def test_wrong_flags_name_the_flag(opts: Options, flag: str) -> None:
    with pytest.raises(UsageError, match=flag):
        render(opts)


def test_command_prints_the_config(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["proxy-config", "nginx", "--listen", "127.0.0.1:8088", "--primary",
                 "http://127.0.0.1:8000", "--collector", "http://127.0.0.1:9090",
                 "--resolver", "10.0.0.10"]) == 0
    assert "lua_max_pending_timers" in capsys.readouterr().out
    assert main(["proxy-config", "nginx", "--collector", "http://c:9/x"]) == 64  # EX_USAGE
    assert "--collector" in capsys.readouterr().err
