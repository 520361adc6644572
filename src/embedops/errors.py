"""The one exception tree of embedops.

Every error carries an HTTP status (``status_code``) so a service needs a single handler,
and a short machine-readable ``code``. Library exceptions (sqlite3, httpx, the index
library, torch) are translated at the boundary of the module that calls them; nothing
outside that module sees them.
"""

from __future__ import annotations


class EmbedOpsError(Exception):
    """Base of every error raised on purpose by embedops."""

    status_code: int = 500
    code: str = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


# --- configuration -----------------------------------------------------------------------


class ConfigError(EmbedOpsError):
    """Settings are invalid or contradict each other."""

    status_code = 400
    code = "config"


# --- input -------------------------------------------------------------------------------


class InputRejected(EmbedOpsError):
    """An input cannot be embedded. ``reason`` is machine-readable (``empty``, ``binary``...)."""

    status_code = 422
    code = "input_rejected"

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason


# --- embedders ---------------------------------------------------------------------------


class EmbedderError(EmbedOpsError):
    """An embedder failed."""

    code = "embedder"


class ModelNotFound(EmbedderError):
    """The model is unknown, or its weights are not installed locally."""

    status_code = 404
    code = "model_not_found"


class RetryableEmbedderError(EmbedderError):
    """A transient failure (rate limit, 5xx, timeout): the same call may succeed later."""

    status_code = 503
    code = "embedder_retryable"


class PermanentEmbedderError(EmbedderError):
    """A failure that retrying will not fix (bad request, wrong dimension, NaN output)."""

    status_code = 502
    code = "embedder_permanent"


# --- store -------------------------------------------------------------------------------


class StoreError(EmbedOpsError):
    """A vector store operation failed."""

    code = "store"


class CollectionNotFound(StoreError):
    status_code = 404
    code = "collection_not_found"


class CollectionExists(StoreError):
    status_code = 409
    code = "collection_exists"


class DimensionMismatch(StoreError):
    """A vector's dimension differs from its collection's."""

    status_code = 422
    code = "dimension_mismatch"


class FingerprintMismatch(StoreError):
    """A vector comes from a different embedder than the collection was built with."""

    status_code = 422
    code = "fingerprint_mismatch"


class ModelConflict(StoreError):
    """A write asks for another model than the collection's: that is a migration."""

    status_code = 409
    code = "model_conflict"


class WrongCollectionKind(StoreError):
    """Documents sent to a collection of external vectors, or raw vectors to a
    collection bound to a model without its fingerprint."""

    status_code = 409
    code = "collection_kind"


class AliasConflict(StoreError):
    """An alias clashes with a collection name, or would point at another alias."""

    status_code = 409
    code = "alias_conflict"


class AliasNotFound(StoreError):
    status_code = 404
    code = "alias_not_found"


class CollectionChanged(StoreError):
    """The collection a run writes to was dropped, dropped and made again, or renamed
    behind an alias (``migrate start`` on a plain collection) while the run waited for
    the write gate: the run stops before writing there; run it again."""

    status_code = 409
    code = "collection_changed"


class StoreLocked(StoreError):
    """Another process holds the store's writer lock."""

    status_code = 423
    code = "store_locked"


class ReadOnlyStore(StoreError):
    """A write was attempted through a read-only handle."""

    status_code = 409
    code = "read_only"


class InvalidCollectionSpec(StoreError):
    """A collection is asked for with a bad dimension, metric, dtype or fingerprint."""

    status_code = 422
    code = "invalid_collection"


class MemoryBudgetExceeded(StoreError):
    """The index would outgrow the memory budget: refused rather than swapping."""

    status_code = 507
    code = "memory_budget_exceeded"


class InvalidFilter(StoreError):
    """A payload filter expression cannot be parsed."""

    status_code = 400
    code = "invalid_filter"


class StoreCorrupted(StoreError):
    """On-disk state is inconsistent and cannot be repaired automatically."""

    code = "store_corrupted"


# --- operations --------------------------------------------------------------------------


class MigrationError(EmbedOpsError):
    """A model migration step failed or is not allowed in the current state."""

    status_code = 409
    code = "migration"


class MigrationNotFound(MigrationError):
    """The alias has no migration (in progress, or at all)."""

    status_code = 404
    code = "migration_not_found"


class InvalidVector(StoreError):
    """A vector batch is malformed: wrong shape, NaN/inf values, or misaligned ids/payloads."""

    status_code = 422
    code = "invalid_vector"


class IndexFailure(StoreError):
    """The ANN index library failed; the index is derived data and can be rebuilt."""

    code = "index_failed"


class InvalidCostInput(EmbedOpsError):
    """A cost-model input is missing, out of range or of the wrong type; ``field`` names it."""

    status_code = 400
    code = "invalid_cost_input"

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field


# --- API embedder failures (raised by embedders/resilience) --------------------------

class RateLimited(RetryableEmbedderError):
    """HTTP 429. ``retry_after`` is the server's wait in seconds, when it sent one."""

    code = "rate_limited"

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerError(RetryableEmbedderError):
    """5xx, a timeout or a connection failure: counts against the circuit breaker."""

    code = "server_error"

    def __init__(self, message: str, status: int | None = None,
                 retry_after: float | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.retry_after = retry_after


class BatchTooLarge(PermanentEmbedderError):
    """The API refused the batch for its size; smaller batches may pass."""

    code = "batch_too_large"


class CircuitOpen(RetryableEmbedderError):
    """The endpoint's breaker is open: the call was not made."""

    code = "circuit_open"


class MalformedResponse(RetryableEmbedderError):
    """The body was not the JSON the API promises (a truncated or garbled answer)."""

    code = "malformed_response"


# --- service -----------------------------------------------------------------------------

class Unauthorized(EmbedOpsError):
    """No API key, or an unknown or revoked one, while keys are configured."""

    status_code = 401
    code = "unauthorized"


class Forbidden(EmbedOpsError):
    """The API key lacks the scope or the collection the request needs."""

    status_code = 403
    code = "forbidden"


class DocumentNotFound(StoreError):
    status_code = 404
    code = "document_not_found"


class PayloadTooLarge(EmbedOpsError):
    """A request body is larger than ``server_max_body_bytes``."""

    status_code = 413
    code = "payload_too_large"


class ServiceUnavailable(EmbedOpsError):
    """The service is starting or stopping and cannot take this request now."""

    status_code = 503
    code = "unavailable"
