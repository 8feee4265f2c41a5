"""The Prometheus endpoint: Apache's PrometheusMetricsProvider on aiohttp.

With ``metricsProvider.className=org.apache.zookeeper.metrics.prometheus.
PrometheusMetricsProvider`` the server serves ``GET /metrics`` on
``metricsProvider.httpHost:httpPort`` (0.0.0.0:7000) in the Prometheus text
format 0.0.4, with the names, types and labels Apache's provider gives
ServerMetrics (its simpleclient 0.9.0: counters keep their names, no
``_total``; summaries carry ``quantile="0.5"`` at the BASIC level and
0.5/0.9/0.99 at the ADVANCED level, plus ``_count``/``_sum``; metric sets have
a ``key`` label).  ``exportJvmInfo`` adds prometheus-client's process, platform
and GC collectors where Apache adds the JVM's.

The values are read at scrape time from what ``mntr`` prints (gauges and
counters, parsed from its own lines so both always agree) and from the
server's summaries (quantiles), by a custom prometheus-client Collector.  The
HTTP server runs on the server's own loop, imported lazily as the AdminServer
is; a scrape costs what one ``mntr`` costs.  As Apache (MetricsProviderBootstrap
throws, ZooKeeperServerMain/QuorumPeerMain give up), a port that cannot be
bound or a bad setting stops the server from starting.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING, Any

from pyzk.config.parse import PROMETHEUS_METRICS_PROVIDER
from pyzk.config.values import parse_java_int
from pyzk.core.metrics import (
    MNTR_COUNTERS,
    MNTR_PERCENTILE_SUMMARIES,
    MNTR_SUMMARIES,
    QUOTA_GAUGE_SETS,
    Summary,
)
from pyzk.shell.admin import _HttpLog

if TYPE_CHECKING:
    from aiohttp import web
    from prometheus_client.core import Metric

    from pyzk.config import ServerConfig

log = logging.getLogger(__name__)
#: aiohttp's protocol log, at DEBUG as the AdminServer's: a malformed request
#: or a hang-up is the client's problem, not a traceback in the server log.
_HTTP_LOG = _HttpLog(logging.getLogger(__name__ + ".http"), {})

#: ServerMetrics' summary sets (``<key>_<name>`` in pyzk's registry) and their level.
SUMMARY_SETS = {"read_per_namespace": False, "write_per_namespace": False,
                "learner_handler_qp_size": False, "learner_handler_qp_time_ms": True,
                "ack_latency": True}
#: ServerMetrics' counter sets.
COUNTER_SETS = ("quota_exceeded_error_per_namespace",)
#: The quantiles (and simpleclient's tolerated errors) of each level.
BASIC_QUANTILES = (0.5,)
ADVANCED_QUANTILES = (0.5, 0.9, 0.99)
_SUMMARY_LINE_PREFIXES = ("avg_", "min_", "max_", "cnt_", "sum_", "p50_", "p95_", "p99_",
                          "p999_")
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class MetricsProviderError(RuntimeError):
    """MetricsProviderLifeCycleException: the provider cannot start, nor can the server."""


def java_parse_boolean(value: str) -> bool:
    """Boolean.parseBoolean: "true" in any case, everything else false."""
    return value.lower() == "true"


def prometheus_enabled(cfg: ServerConfig) -> bool:
    return cfg.metrics_provider_class_name == PROMETHEUS_METRICS_PROVIDER


def _split_set(name: str, sets: Iterable[str]) -> tuple[str, str] | None:
    for set_name in sets:
        suffix = "_" + set_name
        if name.endswith(suffix) and len(name) > len(suffix):
            return set_name, name[: -len(suffix)]
    return None


def _summary_samples(family: Metric, name: str, s: Summary, advanced: bool,
                     labels: dict[str, str]) -> None:
    """One summary's samples: its quantiles (NaN while empty, as simpleclient's
    CKMS), then ``_count`` and ``_sum``."""
    for q in ADVANCED_QUANTILES if advanced else BASIC_QUANTILES:
        value = float(s.quantile(q)) if s.count else math.nan
        family.add_sample(name, {**labels, "quantile": str(q)}, value)
    family.add_sample(name + "_count", labels, float(s.count))
    family.add_sample(name + "_sum", labels, float(s.total))


class ZooKeeperCollector:
    """A prometheus-client collector of ServerMetrics, read when scraped.

    ``shell`` is a StandaloneShell or an EnsembleShell: its ``fourlw`` answers
    ``mntr`` (gauges and counters come from its lines, so the endpoint and
    mntr agree) and its ``server.stats`` holds the summaries.
    """

    def __init__(self, shell: Any) -> None:
        self.shell = shell

    def _mntr(self) -> list[tuple[str, str]]:
        try:
            text = self.shell.fourlw.mntr(None)
        except Exception:  # a scrape never takes the server down; say why once per scrape
            log.exception("Cannot read the metrics for /metrics")
            return []
        out = []
        for line in text.splitlines():
            key, sep, value = line.partition("\t")
            if sep and key.startswith("zk_"):
                out.append((key[3:], value))
        return out

    def collect(self) -> Iterator[Metric]:
        from prometheus_client.core import Metric

        server = getattr(self.shell, "server", None)
        stats = getattr(server, "stats", None)
        counters = set(MNTR_COUNTERS) | set(getattr(stats, "counters", {}))
        summaries: dict[str, Summary] = dict(getattr(stats, "summaries", {}))
        summary_names = set(MNTR_SUMMARIES) | set(MNTR_PERCENTILE_SUMMARIES) | set(summaries)
        sets: dict[tuple[str, str], Metric] = {}

        def labelled(name: str, kind: str) -> Metric:
            family = sets.get((name, kind))
            if family is None:
                family = sets[(name, kind)] = Metric(name, name, kind)
            return family

        for name, raw in self._mntr():
            if name.startswith(_SUMMARY_LINE_PREFIXES) and name.split("_", 1)[1] in summary_names:
                continue
            try:
                value = float(raw)
            except ValueError:  # version, server_state, peer_state: strings, not metrics
                continue
            kind = "counter" if name in counters else "gauge"
            split = _split_set(name, COUNTER_SETS if kind == "counter" else QUOTA_GAUGE_SETS)
            if split is not None:
                labelled(split[0], kind).add_sample(split[0], {"key": split[1]}, value)
                continue
            family = Metric(name, name, kind)
            family.add_sample(name, {}, value)
            yield family
        for name in (*MNTR_SUMMARIES, *MNTR_PERCENTILE_SUMMARIES):
            advanced = name in MNTR_PERCENTILE_SUMMARIES
            family = Metric(name, name, "summary")
            _summary_samples(family, name, summaries.get(name) or Summary(), advanced, {})
            yield family
        for full, s in summaries.items():
            split = _split_set(full, SUMMARY_SETS)
            if split is not None:
                set_name, key = split
                _summary_samples(labelled(set_name, "summary"), set_name, s,
                                 SUMMARY_SETS[set_name], {"key": key})
        yield from sets.values()


def _type_name(family: Metric) -> str:
    """The name a family's HELP/TYPE lines carry: prometheus-client names a
    counter family without ``_total`` and its samples with it; ServerMetrics'
    counters have no ``_total`` at all (simpleclient 0.9.0)."""
    if family.type == "counter" and family.samples and \
            family.samples[0].name == family.name + "_total":
        return family.name + "_total"
    return family.name


def render(families: Iterable[Metric], wanted: set[str] | None = None) -> bytes:
    """Text format 0.0.4 (simpleclient's TextFormat.write004 layout), with
    prometheus-client's number and label escaping; ``_created`` samples
    (which 0.9.0 does not have) are left out; ``wanted`` is the ``name[]``
    filter of Apache's MetricsServlet."""
    from prometheus_client.utils import floatToGoString

    out: list[str] = []
    for family in families:
        name = _type_name(family)
        if wanted is not None and name not in wanted:
            continue
        kind = {"unknown": "untyped", "info": "gauge", "stateset": "gauge"}.get(
            family.type, family.type)
        doc = family.documentation.replace("\\", r"\\").replace("\n", r"\n")
        out.append(f"# HELP {name} {doc}\n# TYPE {name} {kind}\n")
        for s in family.samples:
            if s.name == family.name + "_created":
                continue
            labels = ""
            if s.labels:
                labels = "{" + ",".join(
                    '{}="{}"'.format(k, v.replace("\\", r"\\").replace("\n", r"\n")
                                     .replace('"', r"\""))
                    for k, v in s.labels.items()) + "}"
            out.append(f"{s.name}{labels} {floatToGoString(s.value)}\n")
    return "".join(out).encode()


class PrometheusEndpoint:
    """``/metrics`` on the server's loop, started first and stopped last as
    Apache's provider (before the data tree is served, after it stops)."""

    def __init__(self, shell: Any, cfg: ServerConfig) -> None:
        self.shell = shell
        self.cfg = cfg
        self.enabled = prometheus_enabled(cfg)
        self.port: int | None = None
        self._runner: web.AppRunner | None = None
        self._collectors: list[Any] = []
        # (BASIC summaries keep samples for their median: ServerStats.sample_all,
        # set from the same configuration by ZooKeeperServer)

    async def start(self) -> None:
        """PrometheusMetricsProvider.configure + start; raises
        :class:`MetricsProviderError` when it cannot serve, as Apache's does."""
        if not self.enabled:
            return
        cfg = self.cfg
        host = cfg.metrics_provider_http_host
        try:
            port = parse_java_int("metricsProvider.httpPort", cfg.metrics_provider_http_port)
        except Exception as e:
            raise MetricsProviderError(f"Cannot boot MetricsProvider {PROMETHEUS_METRICS_PROVIDER}"
                                       f": {e}") from e
        export_jvm = java_parse_boolean(cfg.metrics_provider_export_jvm_info)
        log.info("Starting /metrics HTTP endpoint at host: %s, port: %d, exportJvmInfo: %s",
                 host, port, str(export_jvm).lower())
        try:
            # imported here: a server without Prometheus never pays for them
            from aiohttp import web
            from prometheus_client import GCCollector, PlatformCollector, ProcessCollector
            from prometheus_client.registry import CollectorRegistry
        except ImportError as e:
            raise MetricsProviderError(
                f"Cannot boot MetricsProvider {PROMETHEUS_METRICS_PROVIDER}: {e}") from e
        collectors: list[Any] = [ZooKeeperCollector(self.shell)]
        if export_jvm:
            # a private registry: only what Apache's DefaultExports stands for
            reg = CollectorRegistry(auto_describe=False)
            collectors += [ProcessCollector(registry=reg), PlatformCollector(registry=reg),
                           GCCollector(registry=reg)]
        self._collectors = collectors
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        runner = web.AppRunner(app, access_log=None, handle_signals=False, logger=_HTTP_LOG)
        await runner.setup()
        site = web.TCPSite(runner, host, port, reuse_address=True)
        try:
            await site.start()
        except (OSError, ValueError) as e:
            await runner.cleanup()
            log.error("Cannot start /metrics server: %s", e)
            raise MetricsProviderError(
                f"Cannot boot MetricsProvider {PROMETHEUS_METRICS_PROVIDER}: {e}") from e
        self._runner = runner
        server = getattr(site, "_server", None)
        sockets = getattr(server, "sockets", None) or []
        self.port = sockets[0].getsockname()[1] if sockets else port

    async def stop(self) -> None:
        runner, self._runner = self._runner, None
        if runner is not None:
            try:
                await runner.cleanup()
            except Exception:  # shutting down: say it, never fail the stop
                log.exception("Cannot safely stop the /metrics server")

    def scrape(self, wanted: set[str] | None = None) -> bytes:
        """Every collector's families, rendered."""
        families: list[Metric] = []
        for c in self._collectors:
            try:
                families.extend(c.collect())
            except Exception:  # one broken collector must not hide the rest
                log.exception("Metrics collector %r failed", c)
        return render(families, wanted)

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        from aiohttp import web

        if request.method == "TRACE":  # Apache's constraint on TRACE
            return web.Response(status=403)
        if request.path != "/metrics":
            return web.Response(status=404, text="Not Found\n")
        if request.method not in ("GET", "HEAD", "POST"):
            return web.Response(status=405)
        names = request.query.getall("name[]", [])
        body = self.scrape(set(names) if names else None)
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})


__all__ = ["MetricsProviderError", "PrometheusEndpoint", "ZooKeeperCollector", "render"]
