"""Prometheus metrics, held by one :class:`Metrics` object per process component.

There are no import-time globals: every ``Metrics`` owns its own ``CollectorRegistry``, so
two embedders or two test apps never collide. The app factory (or whoever builds an API
embedder) creates one and passes it down; ``render()`` gives the exposition text for
``GET /metrics``.
"""

from __future__ import annotations

from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    generate_latest,
)

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)
WAIT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)


class Metrics:
    """Every embedops metric, registered in ``self.registry``.

    API client side (label ``endpoint``): requests by outcome, 429s, 5xx, retries,
    breaker state (0 closed, 1 half-open, 2 open), request latency, estimated tokens sent.
    Server side: HTTP requests by route and status, items embedded, dynamic batch sizes.
    Service side: queue depth, indexing lag, index memory and points per collection,
    real-time outcomes, micro-batch sizes, enqueue-to-searchable latency, searches, and
    how long model calls waited for the shared model, by priority.
    """

    content_type = CONTENT_TYPE_LATEST

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry if registry is not None else CollectorRegistry()
        r = self.registry
        self.api_requests = Counter("embedops_api_requests", "API embedding requests sent",
                                    ["endpoint", "outcome"], registry=r)
        self.api_rate_limited = Counter("embedops_api_rate_limited",
                                        "HTTP 429 answers", ["endpoint"], registry=r)
        self.api_server_errors = Counter("embedops_api_server_errors",
                                         "HTTP 5xx answers", ["endpoint"], registry=r)
        self.api_retries = Counter("embedops_api_retries", "Retries after a transient error",
                                   ["endpoint"], registry=r)
        self.api_breaker_state = Gauge("embedops_api_breaker_state",
                                       "Circuit breaker: 0 closed, 1 half-open, 2 open",
                                       ["endpoint"], registry=r)
        self.api_latency = Histogram("embedops_api_request_seconds", "API request latency",
                                     ["endpoint"], buckets=LATENCY_BUCKETS, registry=r)
        self.api_tokens = Counter("embedops_api_tokens_sent", "Estimated tokens sent",
                                  ["endpoint"], registry=r)
        self._server_metrics(r)
        self._service_metrics(r)
        # canaries: the latest run of each (label ``canary``); alerts raised, by kind
        self.canary_recall = Gauge("embedops_canary_recall_at_10",
                                   "Recall@10 of a canary's latest run", ["canary"], registry=r)
        self.canary_ndcg = Gauge("embedops_canary_ndcg_at_10",
                                 "nDCG@10 of a canary's latest run", ["canary"], registry=r)
        self.canary_baseline_recall = Gauge("embedops_canary_baseline_recall_at_10",
                                            "Recall@10 of a canary's baseline run",
                                            ["canary"], registry=r)
        self.canary_drop_points = Gauge("embedops_canary_drop_points",
                                        "Points of recall@10 the latest run is below the "
                                        "baseline", ["canary"], registry=r)
        self.canary_alert = Gauge("embedops_canary_alert",
                                  "1 while a canary's latest run is past its threshold",
                                  ["canary"], registry=r)
        self.alerts = Counter("embedops_alerts", "Alerts raised, by kind", ["kind"],
                              registry=r)

    def _server_metrics(self, r: CollectorRegistry) -> None:
        self.http_requests = Counter("embedops_http_requests", "HTTP requests served",
                                     ["route", "status"], registry=r)
        self.http_latency = Histogram("embedops_http_request_seconds",
                                      "HTTP request latency", ["route"],
                                      buckets=LATENCY_BUCKETS, registry=r)
        self.items_embedded = Counter("embedops_server_items_embedded",
                                      "Texts embedded by the server", registry=r)
        self.batch_size = Histogram("embedops_server_batch_size",
                                    "Texts per dynamic batch", buckets=BATCH_BUCKETS,
                                    registry=r)

    def _service_metrics(self, r: CollectorRegistry) -> None:
        self.queue_depth = Gauge("embedops_queue_depth", "Writes queued in the outbox",
                                 registry=r)
        self.indexing_lag = Gauge("embedops_indexing_lag_seconds",
                                  "Now minus the enqueue time of the oldest queued write",
                                  registry=r)
        self.index_memory = Gauge("embedops_index_memory_bytes",
                                  "Resident ANN index size, estimated from the points",
                                  ["collection"], registry=r)
        self.collection_points = Gauge("embedops_collection_points", "Points per collection",
                                       ["collection"], registry=r)
        self.realtime_documents = Counter("embedops_realtime_documents",
                                          "Queued writes processed, by outcome",
                                          ["outcome"], registry=r)
        self.realtime_batch_size = Histogram("embedops_realtime_batch_size",
                                             "Queued writes per micro-batch",
                                             buckets=BATCH_BUCKETS, registry=r)
        self.realtime_lag = Histogram("embedops_realtime_enqueue_to_searchable_seconds",
                                      "From accepted to searchable", buckets=LATENCY_BUCKETS,
                                      registry=r)
        self.realtime_errors = Counter("embedops_realtime_errors",
                                       "Micro-batches that failed and stay queued", ["code"],
                                       registry=r)
        self.searches = Counter("embedops_searches", "Search requests by kind",
                                ["kind"], registry=r)
        self.model_wait = Histogram("embedops_model_wait_seconds",
                                    "Time a model call waited for the shared model, by "
                                    "priority (interactive: requests; background: writes)",
                                    ["priority"], buckets=WAIT_BUCKETS, registry=r)
        # alarms, scheduled jobs and migrations (refreshed on each scrape by the service)
        self.index_memory_share = Gauge("embedops_index_memory_share",
                                        "Index memory / memory budget", registry=r)
        self.alert_active = Gauge("embedops_alert_active",
                                  "1 while an alert of this kind is active", ["alert"],
                                  registry=r)
        self.job_last_run = Gauge("embedops_job_last_run_timestamp_seconds",
                                  "Start of a job's last run (Unix time)", ["job"], registry=r)
        self.job_last_duration = Gauge("embedops_job_last_duration_seconds",
                                       "Duration of a job's last run", ["job"], registry=r)
        self.job_last_success = Gauge("embedops_job_last_success",
                                      "1 when a job's last run ended ok", ["job"], registry=r)
        self.migration_documents_done = Gauge("embedops_migration_documents_done",
                                              "Documents the shadow holds, per alias",
                                              ["alias"], registry=r)
        self.migration_documents_total = Gauge("embedops_migration_documents_total",
                                               "Documents of the live collection, per alias",
                                               ["alias"], registry=r)
        self.migration_phase = Gauge("embedops_migration_phase",
                                     "1 for the phase a migration is in", ["alias", "phase"],
                                     registry=r)
        self.backfill_points = Gauge("embedops_field_backfill_points",
                                     "Points of a declared field's backfill: updated so far "
                                     "and total", ["collection", "field", "kind"], registry=r)
        self.backfill_running = Gauge("embedops_field_backfill_running",
                                      "1 while a declared field's default is being "
                                      "backfilled", ["collection", "field"], registry=r)

    def render(self) -> bytes:
        """The Prometheus text exposition of every metric."""
        return generate_latest(self.registry)

    def value(self, name: str, labels: dict[str, str] | None = None) -> float:
        """Current value of one sample (0.0 when absent); handy for status and tests."""
        found = self.registry.get_sample_value(name, labels or {})
        return float(found) if found is not None else 0.0
