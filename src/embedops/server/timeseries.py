"""The service's time series: what the dashboard plots over time.

A :class:`Sampler` thread of the serving process takes one sample every
``dashboard_sample_s`` seconds (a minute by default) and keeps it in the ledger
(``Ledger.record_sample``; 7 days are kept). A sample is what a ``/metrics`` scrape
computes (``Service.refresh_gauges``), read back from the process's :class:`Metrics`:
queue depth, indexing lag, points and index memory per collection, index memory against
its budget, active alert kinds, migration progress, and the cumulative counters of
HTTP answers, of the API embedders' 429s and 5xx and their breaker states. Rates
(vectors/s, 429/s, 5xx/s) are differences of consecutive samples, worked out when read
(:func:`series`), so a restart that resets the counters costs one point, not the trend.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from embedops.errors import EmbedOpsError
from embedops.ledger import Ledger
from embedops.metrics import Metrics
from embedops.monitor.memory import memory_budget

if TYPE_CHECKING:
    from embedops.server.service import Service

_log = logging.getLogger("embedops.dashboard")


def metric_samples(metrics: Metrics, name: str) -> list[tuple[dict[str, str], float]]:
    """(labels, value) of every sample called ``name`` in the registry."""
    out = []
    for family in metrics.registry.collect():
        for sample in family.samples:
            if sample.name == name:
                out.append((dict(sample.labels), float(sample.value)))
    return out


def _total(metrics: Metrics, name: str) -> float:
    return sum(value for _, value in metric_samples(metrics, name))


def take_sample(service: Service) -> dict[str, Any]:
    """What the service measures now (refreshing the gauges the way a scrape does)."""
    service.refresh_gauges()
    m, ledger = service.metrics, service.ledger
    index = {labels["collection"]: v for labels, v in
             metric_samples(m, "embedops_index_memory_bytes")}
    collections = {
        labels["collection"]: {"points": int(points),
                               "documents": ledger.document_count(labels["collection"]),
                               "index_bytes": int(index.get(labels["collection"], 0))}
        for labels, points in metric_samples(m, "embedops_collection_points")}
    budget, source = memory_budget(service.settings)
    share = m.value("embedops_index_memory_share")
    http = metric_samples(m, "embedops_http_requests_total")
    done = {lab["alias"]: v for lab, v in metric_samples(m, "embedops_migration_documents_done")}
    total = metric_samples(m, "embedops_migration_documents_total")
    return {
        "queue_depth": int(m.value("embedops_queue_depth")),
        "indexing_lag_s": round(m.value("embedops_indexing_lag_seconds"), 3),
        "collections": collections,
        "points_total": sum(c["points"] for c in collections.values()),
        "memory": {"index_bytes": int(share * budget), "budget_bytes": budget,
                   "budget_source": source, "share": round(share, 6)},
        "counters": {
            "http_requests": sum(v for _, v in http),
            "http_429": sum(v for lab, v in http if lab["status"] == "429"),
            "http_5xx": sum(v for lab, v in http if lab["status"].startswith("5")),
            "api_429": _total(m, "embedops_api_rate_limited_total"),
            "api_5xx": _total(m, "embedops_api_server_errors_total"),
            "realtime_documents": _total(m, "embedops_realtime_documents_total"),
        },
        "breakers": {lab["endpoint"]: int(v) for lab, v in
                     metric_samples(m, "embedops_api_breaker_state")},
        "alerts": sorted(lab["alert"] for lab, v in
                         metric_samples(m, "embedops_alert_active") if v),
        "migrations": {lab["alias"]: {"done": int(done.get(lab["alias"], 0)), "total": int(v)}
                       for lab, v in total},
    }


class Sampler:
    """A daemon thread that records :func:`take_sample` every ``interval_s`` seconds,
    starting at once. A failed sample is logged and the next one tried."""

    def __init__(self, service: Service, interval_s: float) -> None:
        if interval_s <= 0:
            raise ValueError(f"sampling interval must be positive, got {interval_s}")
        self.service, self.interval_s = service, interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="embedops-sampler",
                                        daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)

    def sample_once(self) -> None:
        now = time.time()
        self.service.ledger.record_sample(round(now, 3), take_sample(self.service))

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                self.sample_once()
            except EmbedOpsError as exc:  # a busy ledger: try again next time
                _log.warning("dashboard sample failed: %s", exc)
            except Exception:  # a sampler that died would freeze every plot unnoticed
                _log.exception("dashboard sample failed")
            self._stop.wait(self.interval_s)


def _rate(now: float, before: float, seconds: float) -> float:
    """Per-second increase of a counter; a counter that went down restarted from 0."""
    grown = now - before if now >= before else now
    return round(grown / seconds, 6) if seconds > 0 else 0.0


def series(samples: Iterable[tuple[float, dict[str, Any]]]) -> dict[str, Any]:
    """The samples as plot-ready columns: ``t`` (Unix seconds) and one list per series,
    aligned with ``t``; rates have ``None`` at the first sample."""
    rows = list(samples)
    t = [taken for taken, _ in rows]
    out: dict[str, Any] = {"t": t, "queue_depth": [], "indexing_lag_s": [],
                           "memory_share": [], "index_bytes": [], "points": {},
                           "vectors_per_s": [], "http_429_per_s": [], "http_5xx_per_s": [],
                           "api_429_per_s": [], "api_5xx_per_s": [], "alerts": []}
    names = sorted({c for _, d in rows for c in d.get("collections", {})})
    out["points"] = {name: [] for name in names}
    previous: tuple[float, dict[str, Any]] | None = None
    for taken, d in rows:
        out["queue_depth"].append(d.get("queue_depth", 0))
        out["indexing_lag_s"].append(d.get("indexing_lag_s", 0.0))
        out["memory_share"].append(d.get("memory", {}).get("share", 0.0))
        out["index_bytes"].append(d.get("memory", {}).get("index_bytes", 0))
        out["alerts"].append(len(d.get("alerts", [])))
        for name in names:
            out["points"][name].append(d.get("collections", {}).get(name, {}).get("points"))
        _rates(out, previous, taken, d)
        previous = (taken, d)
    return out


def _rates(out: dict[str, Any], previous: tuple[float, dict[str, Any]] | None, taken: float,
           d: dict[str, Any]) -> None:
    keys = (("http_429_per_s", "http_429"), ("http_5xx_per_s", "http_5xx"),
            ("api_429_per_s", "api_429"), ("api_5xx_per_s", "api_5xx"))
    if previous is None:
        out["vectors_per_s"].append(None)
        for key, _ in keys:
            out[key].append(None)
        return
    seconds = taken - previous[0]
    grown = d.get("points_total", 0) - previous[1].get("points_total", 0)
    out["vectors_per_s"].append(round(max(0, grown) / seconds, 3) if seconds > 0 else 0.0)
    now, before = d.get("counters", {}), previous[1].get("counters", {})
    for key, counter in keys:
        out[key].append(_rate(now.get(counter, 0.0), before.get(counter, 0.0), seconds))


def ledger_series(ledger: Ledger, minutes: float) -> dict[str, Any]:
    """:func:`series` of the last ``minutes`` of samples kept in ``ledger``."""
    return series(ledger.samples(since=time.time() - minutes * 60))
