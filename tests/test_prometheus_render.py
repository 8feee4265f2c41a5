"""The metricsProvider.* keys and the /metrics text, without a server."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest

from pyzk.core.metrics import Summary
from pyzk.shell.configfile import load_config
from pyzk.shell.prometheus import ZooKeeperCollector, prometheus_enabled, render

pytestmark = pytest.mark.pure

PROVIDER = "org.apache.zookeeper.metrics.prometheus.PrometheusMetricsProvider"


def test_prometheus_keys_are_used_not_logged(tmp_path: Path,
                                             caplog: pytest.LogCaptureFixture) -> None:
    cfg_path = tmp_path / "zoo.cfg"
    cfg_path.write_text(f"dataDir={tmp_path}\nclientPort=2181\n"
                        f"metricsProvider.className={PROVIDER}\n"
                        "metricsProvider.httpPort=7070\nmetricsProvider.httpHost=127.0.0.1\n"
                        "metricsProvider.exportJvmInfo=false\n")
    with caplog.at_level(logging.INFO, logger="pyzk.config"):
        cfg = load_config(str(cfg_path))
    assert not [r for r in caplog.records if "not used" in r.getMessage()]
    assert prometheus_enabled(cfg)
    assert (cfg.metrics_provider_http_host, cfg.metrics_provider_http_port,
            cfg.metrics_provider_export_jvm_info) == ("127.0.0.1", "7070", "false")


class _FourLetter:
    def mntr(self, conn: object) -> str:
        return ("zk_version\t3.8.0\nzk_znode_count\t5\nzk_proposal_count\t3\n"
                "zk_app_quota_count_limit_per_namespace\t10\nzk_avg_readlatency\t1.5\n"
                "zk_cnt_readlatency\t2\n")


def test_collector_types_levels_and_key_label() -> None:
    read = Summary(percentiles=True)
    for v in (1, 2):
        read.add(v)
    ns = Summary(sampled=True)
    ns.add(7)
    stats = SimpleNamespace(counters={"proposal_count": 3},
                            summaries={"readlatency": read, "app_read_per_namespace": ns})
    shell = SimpleNamespace(fourlw=_FourLetter(), server=SimpleNamespace(stats=stats))
    text = render(ZooKeeperCollector(shell).collect()).decode()
    lines = text.splitlines()
    assert "# TYPE proposal_count counter" in lines and "proposal_count 3.0" in lines
    assert "# TYPE znode_count gauge" in lines and "znode_count 5.0" in lines
    assert 'quota_count_limit_per_namespace{key="app"} 10.0' in lines
    assert [ln for ln in lines if ln.startswith("readlatency")] == [
        'readlatency{quantile="0.5"} 2.0', 'readlatency{quantile="0.9"} 2.0',
        'readlatency{quantile="0.99"} 2.0', "readlatency_count 2.0", "readlatency_sum 3.0"]
    assert [ln for ln in lines if ln.startswith("read_per_namespace")] == [
        'read_per_namespace{key="app",quantile="0.5"} 7.0',
        'read_per_namespace_count{key="app"} 1.0', 'read_per_namespace_sum{key="app"} 7.0']
    assert 'fsynctime{quantile="0.5"} NaN' in lines  # BASIC, empty
    assert not any(ln.startswith(("version", "avg_", "cnt_")) for ln in lines)
    assert "_total" not in text
