"""The cluster runner: the batch ingest's stages on Ray Data.

``embedops ingest PATH --runner ray`` runs the same stages as the local runner
(``ingest/batch.py``), spread over a Ray cluster (a local one by default):

```
files ─▶ read_files (CPU tasks) ─▶ ChunkStage (CPU actors) ─▶ EmbedStage (an actor per
GPU, or per CPU slot; loads the model once) ─▶ write: the driver (embedded store) or
WriteStage actors (a remote store and a ledger every worker reaches)
```

Every write goes through ``write_documents`` with the vectors the embed actors computed
(:class:`~embedops.ingest.ray_stages.ClusterWriter`), so ids, vectors, payloads, ledger
records, dead letters and the ``--json`` summary are those of the local runner.

The job is resumable as a whole: the driver snapshots the ledger before it starts (the
documents committed, the files whose every document committed), the workers classify
against that snapshot, and only what is new or changed is embedded. A job killed at any
moment (driver or workers) and started again embeds what was not committed, at most the
batches in flight again — the same rule as the local runner.
"""

from __future__ import annotations

import contextlib
import logging
import os
import queue
import sys
import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

from embedops.config import Settings
from embedops.errors import ConfigError, EmbedOpsError
from embedops.ingest.batch import (
    _DONE,
    IngestOptions,
    Progress,
    ReadPlan,
    _FileSkipped,
)
from embedops.ingest.ray_stages import (
    ChunkStage,
    ClusterWriter,
    EmbedStage,
    Outcome,
    WriteStage,
    read_files,
)
from embedops.ingest.sources import SourceFile
from embedops.ingest.stages import Work
from embedops.ledger import DocRecord, Ledger
from embedops.preprocess.pipeline import source_id
from embedops.store import local_directory
from embedops.store.protocol import VectorStore

if TYPE_CHECKING:
    from ray.data import Dataset

WriteOn = Literal["auto", "driver", "workers"]
# Environment a worker needs to see as the driver does (test models, offline hubs).
_ENV_PREFIXES = ("EMBEDOPS_", "HF_", "TRANSFORMERS_", "TOKENIZERS_", "XDG_CACHE_HOME")
_BATCH_END = object()
USAGE_STATS_ENV = "RAY_USAGE_STATS_ENABLED"


class ClusterJobError(EmbedOpsError):
    """The cluster failed the job for a reason of its own (a worker lost, no resources)."""

    code = "cluster_job"


@dataclass(frozen=True)
class ClusterOptions:
    """Where and how a cluster job runs.

    ``address``: None starts a local cluster in this process (``num_cpus`` cores, every
    core by default); ``auto`` joins the cluster this machine belongs to; ``ray://host:port``
    a remote one (the source paths must be readable on every node). ``num_gpus``: GPUs
    for the embed stage, one actor each (None: all the cluster has; 0: CPU actors, one
    per CPU slot left after the tokenizers). ``write_on``: ``auto`` writes on the driver
    for the embedded store (one writer), and on the workers for a remote store when they
    reach the ledger (a PostgreSQL ledger, or a local cluster); ``workers`` asserts that
    every node opens the ledger at the same location (up to ``writers`` actors then
    write)."""

    address: str | None = None
    num_gpus: int | None = None
    cpus_per_tokenizer: float = 1.0
    num_cpus: int | None = None
    write_on: WriteOn = "auto"
    writers: int = 2
    embed_batch_documents: int | None = None

    @classmethod
    def from_settings(cls, settings: Settings, **overrides: Any) -> ClusterOptions:
        """The settings' ``ray_*`` values, with the given overrides (None keeps them)."""
        base = cls(address=settings.ray_address, num_gpus=settings.ray_num_gpus,
                   cpus_per_tokenizer=settings.ray_cpus_per_tokenizer)
        return replace(base, **{k: v for k, v in overrides.items() if v is not None})


@dataclass(frozen=True)
class Layout:
    """How many actors each stage gets on the cluster's resources."""

    gpus: int
    embedders: int
    tokenizers: int


def plan_layout(cpus: float, gpus: int, cpus_per_tokenizer: float) -> Layout:
    """One embed actor per GPU; without GPUs, one per CPU slot left after one tokenizer.
    Tokenizer actors take the CPUs the embed actors leave (at least one)."""
    cpt = max(cpus_per_tokenizer, 0.1)
    embedders = gpus if gpus > 0 else max(1, int(cpus - cpt))
    cpu_embedders = gpus if gpus > 0 else embedders  # each embed actor takes one CPU
    tokenizers = max(1, int((cpus - cpu_embedders) // cpt))
    return Layout(gpus, embedders, tokenizers)


class RayIngest(ClusterWriter):
    """One cluster ingest run into one collection (driver side). Same contract as
    ``BatchIngest``: ``run(paths)`` returns the ``IngestSummary``."""

    def __init__(self, store: VectorStore, ledger: Ledger, settings: Settings,
                 options: IngestOptions, cluster: ClusterOptions,
                 progress: Progress | None = None) -> None:
        super().__init__(store, ledger, settings, options, progress)
        self.cluster = cluster
        self.write_on: WriteOn = cluster.write_on
        if self.write_on == "auto":
            # Workers write where they can: a remote store (no single writer) and a
            # ledger they reach — a PostgreSQL ledger, or on a local cluster the SQLite
            # file of this machine.
            remote = local_directory(settings.store) is None
            shared = ledger.path is None  # a PostgreSQL ledger: every node reaches it
            self.write_on = "workers" if remote and (cluster.address is None or shared) \
                else "driver"

    def run_files(self, files: Sequence[SourceFile]) -> Any:
        with ray_session(self.cluster):
            return super().run_files(files)

    def _start_reader(self, files: Sequence[SourceFile]
                      ) -> tuple[queue.Queue[object], threading.Event, threading.Thread]:
        known, by_source, _, plan = self._prepare_reading()
        out: queue.Queue[object] = queue.Queue(maxsize=4096)
        stop = threading.Event()
        dataset = self._dataset(files, plan, known) if files else None

        def feed() -> None:
            try:
                batches = () if dataset is None else dataset.iter_batches(
                    batch_size=None, batch_format="numpy")
                for batch in batches:
                    if stop.is_set():
                        break
                    embedded = batch.get("embedded")
                    for i, item in enumerate(batch["item"]):
                        if isinstance(item, _FileSkipped):  # the workers know no ids
                            rel = source_id(item.source.path, item.source.root)
                            item = _FileSkipped(item.source, by_source.get(rel, []))
                        elif isinstance(item, Work):
                            if item.chunks:
                                self.progress("planned", len(item.chunks))
                            self.take(item, None if embedded is None else embedded[i])
                        out.put(item)
                    if self.write_on == "workers":
                        out.put(_BATCH_END)
            except BaseException as exc:  # handed to the consumer, which re-raises it
                out.put(_job_error(exc))
            finally:
                out.put(_DONE)

        feeder = threading.Thread(target=feed, name="embedops-cluster-feed", daemon=True)
        feeder.start()
        return out, stop, feeder

    def _dataset(self, files: Sequence[SourceFile], plan: ReadPlan,
                 known: dict[str, DocRecord]) -> Dataset:
        import ray
        from ray.data import ActorPoolStrategy, DataContext

        context = DataContext.get_current()
        context.execution_options.preserve_order = True  # a file's end after its rows
        context.enable_progress_bars = False  # the command draws its own
        logging.getLogger("ray.data").setLevel(logging.WARNING)
        logging.getLogger("ray.data._internal.progress").setLevel(logging.ERROR)
        resources = ray.cluster_resources()
        gpus = self.cluster.num_gpus
        layout = plan_layout(float(resources.get("CPU", 1)),
                             int(resources.get("GPU", 0)) if gpus is None else gpus,
                             self.cluster.cpus_per_tokenizer)
        cpt = self.cluster.cpus_per_tokenizer
        model = self._info.model if self._info else self.settings.model
        embed_settings = self.settings
        if layout.gpus:
            embed_settings = self.settings.model_copy(update={"device": "cuda"})
        rows = [{"path": str(f.path), "root": str(f.root)} for f in files]
        docs_per_call = self.cluster.embed_batch_documents or self.options.batch_size
        ds = ray.data.from_items(rows, override_num_blocks=max(1, min(len(rows), 256)))
        ds = ds.map_batches(read_files, fn_kwargs={"plan": plan}, batch_size=1,
                            num_cpus=cpt, batch_format="numpy")
        ds = ds.map_batches(ChunkStage, fn_constructor_kwargs={
            "settings": self.settings, "model": model, "known": known},
            batch_size=64, num_cpus=cpt, batch_format="numpy",
            compute=ActorPoolStrategy(min_size=1, max_size=layout.tokenizers))
        ds = ds.map_batches(EmbedStage, fn_constructor_kwargs={
            "settings": embed_settings, "collection": self._info},
            batch_size=docs_per_call, num_cpus=1, num_gpus=1 if layout.gpus else 0,
            batch_format="numpy", compute=ActorPoolStrategy(size=layout.embedders))
        if self.write_on == "workers":
            ds = ds.map_batches(WriteStage, fn_constructor_kwargs={
                "settings": self.settings, "options": self.options,
                "ledger_path": self._ledger_location()},
                batch_size=docs_per_call, num_cpus=0, batch_format="numpy",
                compute=ActorPoolStrategy(min_size=1, max_size=max(1, self.cluster.writers)))
        return ds

    def _ledger_location(self) -> str:
        """What a write worker opens: the SQLite file, or the PostgreSQL URL of the
        settings (the ledger handle keeps no password)."""
        if self.ledger.path is not None:
            return str(self.ledger.path)
        if self.settings.ledger is None:
            raise ConfigError("workers write to a PostgreSQL ledger named by the `ledger` "
                              "setting: set it, or write on the driver")
        return self.settings.ledger

    def _consume(self, items: queue.Queue[object]) -> None:
        if self.write_on == "driver":
            super()._consume(items)
            return
        while (item := items.get()) is not _DONE:
            if isinstance(item, BaseException):
                raise item
            if item is _BATCH_END:
                self._record_ready_files()
            elif isinstance(item, Outcome):
                self._merge(item)
            else:
                self._handle_side_item(item)
        self._record_ready_files()

    def _merge(self, outcome: Outcome) -> None:
        """What a write actor did: its counts, the ids it saw, the sources that failed."""
        for name, delta in outcome.counts.items():
            setattr(self.summary, name, getattr(self.summary, name) + delta)
        self._seen.update(outcome.seen)
        self._claimed.update(outcome.seen)
        self._failed_sources.update(outcome.failed_sources)
        self.progress("document", len(outcome.seen))
        self.progress("chunks", outcome.counts.get("chunks_embedded", 0))

    def _record_ready_files(self) -> None:
        """Every row before a file's end has been written by now (rows keep their order):
        record the digests of the files whose documents all committed."""
        if self._info is None:  # a write actor created the collection
            self._info = self._existing_collection()
        ready, self._ready_files = self._ready_files, []
        self._record_files(ready)


def _job_error(exc: BaseException) -> BaseException:
    """An error of ours raised on a worker comes back as itself; what Ray raises for
    its own reasons becomes a ``ClusterJobError``."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        cause = getattr(current, "cause", None)
        if isinstance(current, EmbedOpsError) and type(current).__module__.startswith(
                "embedops"):
            return current
        if isinstance(cause, EmbedOpsError):
            return cause
        current = current.__cause__ or (cause if isinstance(cause, BaseException) else None)
    if type(exc).__module__.split(".")[0] == "ray":
        return ClusterJobError(f"the cluster job failed: {type(exc).__name__}: "
                               f"{str(exc).splitlines()[0] if str(exc) else ''}")
    return exc


def worker_env() -> dict[str, str]:
    """The driver's environment that workers need too (test models, offline hubs)."""
    return {k: v for k, v in os.environ.items() if k.startswith(_ENV_PREFIXES)}


@contextlib.contextmanager
def ray_session(cluster: ClusterOptions) -> Iterator[None]:
    """Connect to (or start) the cluster for one job; a session the caller already
    opened (``ray.init`` before) is used as it is and left open."""
    try:
        import ray
    except ImportError as exc:
        raise ConfigError("the Ray runner needs Ray: pip install 'embedops[ray]'") from exc
    if ray.is_initialized():
        yield
        return
    # Ray prints the cluster's error messages ("(raylet) A worker died ...") on the
    # driver's sys.stdout, which is where `--json` puts the job's summary: while the
    # session is open they go to stderr, with the rest of the job's diagnostics.
    with contextlib.redirect_stdout(sys.stderr):
        yield from _opened_session(ray, cluster)


def _opened_session(ray: Any, cluster: ClusterOptions) -> Iterator[None]:
    runtime_env = {"env_vars": worker_env()}
    common: dict[str, Any] = {"log_to_driver": False, "logging_level": logging.WARNING,
                              "runtime_env": runtime_env}
    try:
        if cluster.address:
            ray.init(address=cluster.address, **common)
        else:
            # A cluster started for one command reports no usage statistics (it starts
            # offline); RAY_USAGE_STATS_ENABLED=1 in the environment turns them back on.
            os.environ.setdefault(USAGE_STATS_ENV, "0")
            ray.init(num_cpus=cluster.num_cpus or os.cpu_count() or 1,
                     num_gpus=cluster.num_gpus, include_dashboard=False, **common)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ConfigError(f"cannot reach the Ray cluster {cluster.address or '(local)'}: "
                          f"{exc}") from exc
    try:
        yield
    finally:
        ray.shutdown()
