"""The Prometheus endpoint of a real pyzk process (Apache's PrometheusMetricsProvider).

Scraped with prometheus-client's own text parser: every number mntr prints
is there with mntr's value, with Apache's types (counters without
``_total``, summaries with 0.5 at the BASIC level and 0.5/0.9/0.99 at the
ADVANCED level, the ``key`` label of metric sets); bad scrapes never hurt
the server; a port that cannot be bound stops the start, as in Apache.
"""

from __future__ import annotations

import math
import socket
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from pyzk.core.metrics import MNTR_COUNTERS, MNTR_PERCENTILE_SUMMARIES, MNTR_SUMMARIES
from pyzk.testing.servers import PyzkServer, ServerError, free_port

pytestmark = pytest.mark.server

parser = pytest.importorskip("prometheus_client.parser")
kazoo_client = pytest.importorskip("kazoo.client")

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"
#: mntr lines that are not numbers (MonitorCommand's, not the provider's).
STRINGS = {"version", "server_state", "peer_state"}


def prom_cfg(port: int, **extra: str) -> dict[str, str]:
    return {"metricsProvider.className": PROVIDER, "metricsProvider.httpHost": "127.0.0.1",
            "metricsProvider.httpPort": str(port), **extra}


def http(port: int, path: str, method: str = "GET") -> tuple[int, str]:
    req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def scrape(port: int) -> dict[str, Any]:
    status, text = http(port, "/metrics")
    assert status == 200
    return {f.name: f for f in parser.text_string_to_metric_families(text)}


def mntr(srv: PyzkServer) -> dict[str, str]:
    return dict(line.split("\t", 1) for line in srv.four_letter("mntr").splitlines())


def sample(families: dict[str, Any], name: str, **labels: str) -> float:
    """The value of sample ``name`` with exactly ``labels`` (in any family).

    prometheus-client's parser names a counter's samples ``<name>_total``
    whatever the text says (the text itself is checked for the suffix by
    test_types_quantiles_levels_and_key_label)."""
    for fam in families.values():
        for s in fam.samples:
            if s.labels == labels and (s.name == name or (
                    fam.type == "counter" and s.name == name + "_total" and fam.name == name)):
                return float(s.value)
    raise KeyError((name, labels))


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Any:
    port = free_port()
    with PyzkServer(tmp_path_factory.mktemp("prom"), extra_cfg=prom_cfg(port)) as srv:
        zk = kazoo_client.KazooClient(hosts=srv.address, timeout=10)
        zk.start(timeout=20)
        try:
            zk.create("/app/a", b"x" * 10, makepath=True)
            for i in range(20):
                zk.set("/app/a", str(i).encode())
                zk.get("/app/a")
            zk.create("/other", b"")
        finally:
            zk.stop()
            zk.close()
        yield srv, port


def test_every_mntr_number_is_scraped_with_its_value(server: Any) -> None:
    srv, port = server
    before = mntr(srv)
    fams = scrape(port)
    after = mntr(srv)
    summaries = set(MNTR_SUMMARIES) | set(MNTR_PERCENTILE_SUMMARIES)
    checked = 0
    for key, value in before.items():
        name = key.removeprefix("zk_")
        if name in STRINGS:
            continue
        prefix, _, base = name.partition("_")
        if prefix in ("avg", "min", "max", "cnt", "sum", "p50", "p95", "p99", "p999") and (
                base in summaries or base.endswith("_per_namespace")):
            if "_per_namespace" in base:  # a summary set: <key>_read_per_namespace
                ns, _, set_name = base.partition("_")
                labels = {"key": ns}
            else:
                set_name, labels = base, {}
            if prefix == "cnt":
                assert sample(fams, set_name + "_count", **labels) == float(value), name
            elif prefix == "sum":
                assert sample(fams, set_name + "_sum", **labels) == float(value), name
            elif prefix == "p50" and int(before[f"zk_cnt_{base}"]):
                assert sample(fams, set_name, quantile="0.5", **labels) == float(value), name
            checked += 1
            continue
        # gauges and counters: between the mntr before and the one after (the
        # 4lw connections themselves move packets, connections, uptime, fds)
        lo, hi = sorted((float(value), float(after[key])))
        got = sample(fams, name)
        if name == "open_file_descriptor_count":
            assert got > 0
        elif name in ("num_alive_connections", "uptime"):
            assert lo - 1 <= got <= hi + 1, name
        else:
            assert lo <= got <= hi, (name, got, lo, hi)
        checked += 1
    assert checked > 450


def test_types_quantiles_levels_and_key_label(server: Any) -> None:
    srv, port = server
    fams = scrape(port)
    text = http(port, "/metrics")[1]
    lines = text.splitlines()
    for name in MNTR_COUNTERS:
        assert fams[name].type == "counter", name
        # Apache's simpleclient 0.9.0: the sample is the counter's own name
        assert f"# TYPE {name} counter" in lines, name
        assert sum(1 for ln in lines if ln.split(" ")[0] == name) == 1, name
        assert not any(ln.startswith(name + "_total") for ln in lines), name
    assert fams["znode_count"].type == "gauge"
    quantiles = {
        name: sorted({s.labels["quantile"] for s in fams[name].samples if "quantile" in s.labels})
        for name in summaries_of(fams)
    }
    for name in MNTR_PERCENTILE_SUMMARIES:  # ServerMetrics' ADVANCED level
        assert quantiles[name] == ["0.5", "0.9", "0.99"], name
    for name in MNTR_SUMMARIES:  # the BASIC level
        assert quantiles[name] == ["0.5"], name
    # the write_per_namespace summary set, BASIC, one series per namespace
    writes = fams["write_per_namespace"]
    assert writes.type == "summary"
    keys = {s.labels["key"] for s in writes.samples}
    assert {"app", "other"} <= keys
    assert sample(fams, "write_per_namespace_count", key="app") >= 21
    assert not math.isnan(sample(fams, "write_per_namespace", key="app", quantile="0.5"))
    # an empty summary: NaN quantiles, as simpleclient's
    assert math.isnan(sample(fams, "election_time", quantile="0.5"))
    assert sample(fams, "updatelatency_count") >= 21
    # Python's process metrics where Apache exports the JVM's
    assert sample(fams, "process_resident_memory_bytes") > 0
    assert "python_info" in fams
    totals = {ln.split(" ")[0].split("{")[0] for ln in lines
              if not ln.startswith("#") and ln.split(" ")[0].split("{")[0].endswith("_total")}
    # only prometheus-client's own (Apache's JVM exports have theirs too)
    assert totals <= {"process_cpu_seconds_total", "python_gc_objects_collected_total",
                      "python_gc_objects_uncollectable_total", "python_gc_collections_total"}
    assert not [ln for ln in lines if "_created " in ln or "_created{" in ln]


def summaries_of(fams: dict[str, Any]) -> list[str]:
    return [n for n, f in fams.items() if f.type == "summary"]


def test_bad_scrapes_never_hurt(server: Any) -> None:
    srv, port = server
    assert http(port, "/")[0] == 404
    assert http(port, "/metrics/x")[0] == 404
    assert http(port, "/metrics", method="TRACE")[0] == 403
    assert http(port, "/metrics", method="HEAD")[0] == 200
    status, text = http(port, "/metrics?name[]=znode_count")
    assert status == 200 and [f.name for f in parser.text_string_to_metric_families(text)] == [
        "znode_count"]
    for data in (b"GET /metrics HTTP/1.1\r\nHost: x\r\n", b"\x16\x03\x01garbage\r\n\r\n",
                 b"GET /metrics HTTP/1.1\r\n\r\n"):
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(data)  # and vanish, mid-request or before reading the answer
    for _ in range(5):  # a client that goes away while the answer is written
        s = socket.create_connection(("127.0.0.1", port), timeout=5)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
        s.sendall(b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n")
        s.close()
    assert srv.four_letter("ruok") == "imok"
    assert "znode_count" in scrape(port)
    assert "Traceback" not in srv.log_path.read_text()


def test_port_in_use_stops_the_start(tmp_path: Path) -> None:
    """MetricsProviderLifeCycleException: Apache's server does not start."""
    blocker = socket.socket()
    blocker.bind(("127.0.0.1", 0))
    blocker.listen(1)
    try:
        srv = PyzkServer(tmp_path / "busy", extra_cfg=prom_cfg(blocker.getsockname()[1]))
        with pytest.raises(ServerError):
            srv.start()
        srv.stop()
        assert "Cannot start /metrics server" in srv.log_path.read_text()
    finally:
        blocker.close()
    srv = PyzkServer(tmp_path / "nan", extra_cfg=prom_cfg(0, **{
        "metricsProvider.httpPort": "seven"}))
    with pytest.raises(ServerError):
        srv.start()
    srv.stop()


def test_no_jvm_info_and_default_provider(tmp_path: Path) -> None:
    port = free_port()
    with PyzkServer(tmp_path / "nojvm", extra_cfg=prom_cfg(
            port, **{"metricsProvider.exportJvmInfo": "false"})) as srv:
        fams = scrape(port)
        assert "znode_count" in fams and "python_info" not in fams
        assert not [n for n in fams if n.startswith("process_")]
        assert "key metricsProvider" not in srv.log_path.read_text()
    port = free_port()
    with PyzkServer(tmp_path / "default", extra_cfg={
            "metricsProvider.httpPort": str(port)}) as srv:
        assert srv.four_letter("ruok") == "imok"
        with pytest.raises(OSError):
            socket.create_connection(("127.0.0.1", port), timeout=2).close()
