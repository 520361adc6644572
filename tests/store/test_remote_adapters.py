"""The remote adapters (pgvector, Milvus) beyond the shared contract: scores per metric,
float16 rows, names Milvus would refuse, alias swaps under readers, payload patches, and
the capabilities each engine lacks, reported rather than imitated."""

from __future__ import annotations

import threading
import time
from pathlib import Path

import numpy as np
import pytest

from embedops.errors import (
    AliasConflict,
    CollectionExists,
    CollectionNotFound,
    InvalidCollectionSpec,
    ReadOnlyStore,
)
from embedops.store import IndexMaintenance, RenameBehindAlias, VectorStore
from embedops.store.remote import NotSupported

from .conftest import BACKENDS, ENGINES, opener
from .storedata import exact_top_k, mixture, recall

REMOTE = tuple(b for b in BACKENDS if b != "embedded")  # every remote URL scheme
REMOTE_ENGINES = tuple(b for b in ENGINES if b != "embedded")  # one scheme an engine
MILVUS = tuple(b for b in REMOTE_ENGINES if b.startswith("milvus"))
DIM = 16


@pytest.fixture(params=REMOTE_ENGINES)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def store(backend: str, tmp_path: Path) -> VectorStore:
    handle = opener(backend)(tmp_path / "store")
    yield handle
    handle.close()


def _exact(base: np.ndarray, queries: np.ndarray, metric: str) -> np.ndarray:
    dots = queries @ base.T
    if metric != "l2":
        return dots
    return -(np.square(queries).sum(1)[:, None] - 2 * dots + np.square(base).sum(1)[None, :])


@pytest.mark.parametrize("metric", ["cosine", "ip", "l2"])
def test_scores_are_the_metric_similarity(store: VectorStore, metric: str) -> None:
    rng = np.random.default_rng(3)
    base = mixture(300, DIM, seed=3) * rng.uniform(0.5, 2.0, (300, 1)).astype(np.float32)
    if metric == "cosine":
        base /= np.linalg.norm(base, axis=1, keepdims=True)
    store.create_collection("m", DIM, fingerprint="fp", metric=metric)
    store.upsert("m", [f"p{i}" for i in range(300)], base, None, fingerprint="fp")
    queries = mixture(5, DIM, seed=4)
    truth = _exact(base, queries, metric)
    for exact in (False, True):
        for q, hits in enumerate(store.search("m", queries, k=5, exact=exact)):
            best = np.argsort(-truth[q])[:5]
            assert [h.id for h in hits] == [f"p{i}" for i in best]
            assert [h.score for h in hits] == pytest.approx(truth[q][best], rel=1e-4,
                                                            abs=1e-4)


def test_float16_collection_holds_float16_values(store: VectorStore) -> None:
    vectors = mixture(50, DIM, seed=5)
    store.create_collection("h", DIM, fingerprint="fp", dtype="float16")
    store.upsert("h", [str(i) for i in range(50)], vectors, None, fingerprint="fp")
    (point,) = store.get("h", ["7"], with_vectors=True)
    assert point.vector is not None
    assert np.array_equal(point.vector, vectors[7].astype(np.float16).astype(np.float32))
    assert store.search("h", vectors[7], k=1)[0][0].id == "7"


def test_names_with_dots_and_dashes_round_trip(store: VectorStore) -> None:
    store.create_collection("docs.all-minilm_l6", 4, fingerprint="fp")
    store.create_collection("docs.e5-small", 4, fingerprint="fp")
    store.create_alias("docs-live.v1", "docs.all-minilm_l6")
    assert [c.name for c in store.list_collections()] == ["docs.all-minilm_l6",
                                                          "docs.e5-small"]
    assert store.list_aliases() == {"docs-live.v1": "docs.all-minilm_l6"}
    assert store.resolve("docs-live.v1") == "docs.all-minilm_l6"
    assert store.get_collection("docs-live.v1").aliases == ("docs-live.v1",)
    with pytest.raises(AliasConflict):
        store.create_alias("docs.e5-small", "docs.all-minilm_l6")
    with pytest.raises(CollectionNotFound):
        store.get_collection("docs_all-minilm_l6")


def test_payload_patch_is_an_rfc7396_merge(store: VectorStore) -> None:
    store.create_collection("p", 4, fingerprint="fp")
    store.upsert("p", ["a", "b"], np.eye(4, dtype=np.float32)[:2],
                 [{"meta": {"x": 1, "y": 2}, "keep": True}, {"meta": 5}], fingerprint="fp")
    patch = {"meta": {"x": None, "z": {"deep": [1, 2]}}, "tag": "t"}
    assert store.update_payload("p", patch, ids=["a", "b", "nope"]) == 2
    a, b = store.get("p", ["a", "b"])
    assert a.payload == {"meta": {"y": 2, "z": {"deep": [1, 2]}}, "keep": True, "tag": "t"}
    assert b.payload == {"meta": {"z": {"deep": [1, 2]}}, "tag": "t"}
    assert store.update_payload("p", {"tag": None}, filter='tag = "t"') == 2
    assert store.count("p", "tag exists") == 0


def test_empty_selections_change_nothing(store: VectorStore) -> None:
    store.create_collection("e", 4, fingerprint="fp")
    assert store.upsert("e", [], np.zeros((0, 4), np.float32), [], fingerprint="fp") == 0
    assert store.delete("e", ids=["nope"]) == 0
    assert store.get("e", []) == []
    assert store.search("e", np.ones(4, np.float32), k=3) == [[]]
    assert list(store.scan("e")) == []


@pytest.mark.parametrize("backend", REMOTE)  # every way of reaching one
def test_read_only_handle_refuses_every_write(backend: str, tmp_path: Path) -> None:
    with opener(backend)(tmp_path / "store") as writer:
        writer.create_collection("c", 4, fingerprint="fp")
        writer.upsert("c", ["a"], np.ones((1, 4), np.float32), None, fingerprint="fp")
    reader = opener(backend)(tmp_path / "store", read_only=True)
    try:
        for call in (lambda: reader.create_collection("d", 4, fingerprint="fp"),
                     lambda: reader.delete("c", ids=["a"]),
                     lambda: reader.update_payload("c", {"x": 1}, ids=["a"]),
                     lambda: reader.create_alias("live", "c"),
                     lambda: reader.drop_collection("c")):
            with pytest.raises(ReadOnlyStore):
                call()
        assert reader.count("c") == 1
    finally:
        reader.close()


@pytest.mark.parametrize("backend", REMOTE)  # every way of reaching one
def test_alias_swaps_never_interrupt_a_reader(backend: str, tmp_path: Path) -> None:
    """Invariant 6: a reader on another handle sees the old or the new target of a
    repointed alias, whole, never an error or a mix."""
    writer = opener(backend)(tmp_path / "store")
    vectors = mixture(100, DIM, seed=8)
    for name in ("blue", "green"):
        writer.create_collection(name, DIM, fingerprint="fp")
        writer.upsert(name, [f"{name}{i}" for i in range(100)], vectors,
                      [{"side": name}] * 100, fingerprint="fp")
    writer.create_alias("live", "blue")
    reader = opener(backend)(tmp_path / "store", read_only=True)
    seen: list[set[str]] = []
    errors: list[BaseException] = []
    done = threading.Event()

    def read() -> None:
        try:
            while not done.is_set():
                for hits in reader.search("live", vectors[:3], k=5):
                    seen.append({h.payload["side"] for h in hits})
        except BaseException as exc:  # reported below, with the test's failure
            errors.append(exc)

    thread = threading.Thread(target=read)
    thread.start()
    try:
        while not seen and not errors:
            time.sleep(0.005)
        for i in range(40):
            writer.repoint_alias("live", "green" if i % 2 == 0 else "blue")
            time.sleep(0.005)
    finally:
        done.set()
        thread.join()
        reader.close()
        writer.close()
    assert not errors, errors
    assert all(len(sides) == 1 for sides in seen)
    assert set().union(*seen) == {"blue", "green"}


# --- pgvector ----------------------------------------------------------------------------

@pytest.fixture
def pg(tmp_path: Path) -> VectorStore:
    if "postgresql" not in BACKENDS:
        pytest.fail("the postgresql backend is not registered: install embedops[remote]")
    handle = opener("postgresql")(tmp_path / "store")
    yield handle
    handle.close()


def test_pg_refuses_int8_and_oversized_dimensions(pg: VectorStore) -> None:
    with pytest.raises(InvalidCollectionSpec, match="float16"):
        pg.create_collection("q", 8, fingerprint="fp", dtype="int8")
    with pytest.raises(InvalidCollectionSpec, match="2000"):
        pg.create_collection("big", 2001, fingerprint="fp")
    assert pg.list_collections() == []


def test_pg_renames_behind_an_alias_in_one_step(pg: VectorStore) -> None:
    assert isinstance(pg, RenameBehindAlias)
    pg.create_collection("docs", 4, fingerprint="fp")
    pg.upsert("docs", ["a"], np.ones((1, 4), np.float32), None, fingerprint="fp")
    pg.rename_behind_alias("docs", "docs.v1")
    assert pg.list_aliases() == {"docs": "docs.v1"}
    assert pg.count("docs") == 1 and pg.get_collection("docs").name == "docs.v1"


def test_pg_filters_use_the_declared_payload_index(pg: VectorStore) -> None:
    pg.create_collection("f", 4, fingerprint="fp", payload_indexes=["lang"])
    rng = np.random.default_rng(0)
    pg.upsert("f", [str(i) for i in range(2000)], rng.standard_normal((2000, 4)),
              [{"lang": f"l{i % 200}"} for i in range(2000)], fingerprint="fp")
    pg.create_payload_index("f", "meta.year")
    assert pg.get_collection("f").payload_indexes == ("lang", "meta.year")
    conn = pg.conn  # type: ignore[attr-defined]
    conn.execute("ANALYZE")
    from embedops.store.pg_filters import compile_pg_filter

    where, params = compile_pg_filter('lang = "l7"')
    table = f"{pg.schema}.points_1"  # type: ignore[attr-defined]
    plan = "\n".join(r[0] for r in conn.execute(
        f"EXPLAIN SELECT id FROM {table} WHERE {where}", params))
    assert "payload_1_lang" in plan, plan
    assert pg.count("f", 'lang = "l7"') == 10


def test_pg_concurrent_writers_of_the_same_ids(tmp_path: Path) -> None:
    """Four handles upsert overlapping ids in shuffled orders at once: no deadlock, no
    lost or doubled point."""
    handles = [opener("postgresql")(tmp_path / "store") for _ in range(4)]
    handles[0].create_collection("w", 4, fingerprint="fp")
    errors: list[BaseException] = []

    def write(store: VectorStore, seed: int) -> None:
        rng = np.random.default_rng(seed)
        order = rng.permutation(600)
        try:
            for lo in range(0, 600, 50):
                ids = [f"p{i}" for i in order[lo:lo + 50]]
                store.upsert("w", ids, rng.standard_normal((50, 4)), None, fingerprint="fp")
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=write, args=(h, n)) for n, h in enumerate(handles)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert not errors, errors
        assert handles[0].count("w") == 600
    finally:
        for handle in handles:
            handle.close()


SHARED = tuple(b for b in REMOTE if b != "milvus-lite")  # engines several processes share


@pytest.mark.parametrize("scheme", SHARED)
def test_writers_racing_to_create_one_collection(scheme: str, tmp_path: Path) -> None:
    """Four handles create the same collection at once (two ingest processes starting
    on a new collection): one creates it, the others get ``CollectionExists`` — never
    an engine error — and every handle can write and search it straight away."""
    handles = [opener(scheme)(tmp_path / "store") for _ in range(4)]
    start = threading.Barrier(len(handles))
    outcomes: list[str] = []

    def create(store: VectorStore) -> None:
        start.wait()
        try:
            store.create_collection("race", 4, fingerprint="fp")
            outcomes.append("created")
        except CollectionExists:
            outcomes.append("exists")
        except BaseException as exc:  # reported below
            outcomes.append(repr(exc))

    threads = [threading.Thread(target=create, args=(h,)) for h in handles]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    try:
        assert sorted(outcomes) == ["created", "exists", "exists", "exists"], outcomes
        for n, handle in enumerate(handles):
            handle.upsert("race", [f"p{n}"], np.full((1, 4), n + 1.0), None,
                          fingerprint="fp")
        hits = handles[-1].search("race", np.ones(4, np.float32), k=10)[0]
        assert sorted(hit.id for hit in hits) == ["p0", "p1", "p2", "p3"]
    finally:
        for handle in handles:
            handle.close()


# --- Milvus ------------------------------------------------------------------------------

@pytest.mark.parametrize("scheme", MILVUS)
def test_milvus_reports_what_it_does_not_offer(scheme: str, tmp_path: Path) -> None:
    store = opener(scheme)(tmp_path / "store")
    store.create_collection("c", 4, fingerprint="fp", payload_indexes=["lang"])
    stats = store.stats("c")
    assert stats["deleted"] is None and stats["index_bytes"] is None
    assert stats["payload_indexes_declared"] == ["lang"] and stats["payload_indexes_built"] == []
    assert store.get_collection("c").payload_indexes == ()
    assert not isinstance(store, RenameBehindAlias | IndexMaintenance)
    with pytest.raises(NotSupported) as refused:
        store.create_payload_index("c", "lang")  # type: ignore[attr-defined]
    assert refused.value.status_code == 501
    store.close()


@pytest.mark.parametrize("scheme", MILVUS)
def test_milvus_recall_through_its_indexes(scheme: str, tmp_path: Path) -> None:
    """milvus-lite scores rows it has not flushed by brute force: flushed, they are
    searched through HNSW (float32) and HNSW_SQ (int8, rescored) at the default
    settings, unfiltered and under filters of 60% and 1% of the points."""
    from embedops.store.milvus_connect import engine_name

    n, dim = 12_000, 64
    data = mixture(n + 100, dim, seed=7)
    base, queries = data[:n], data[n:]
    idx = np.arange(n)
    store = opener(scheme)(tmp_path / "store")
    try:
        got = {}
        for dtype in ("float32", "int8"):
            store.create_collection(dtype, dim, fingerprint="fp", dtype=dtype)
            store.upsert(dtype, [str(i) for i in range(n)], base,
                         [{"b": i % 10, "rare": i % 100 == 0} for i in range(n)],
                         fingerprint="fp")
            store.client.flush(engine_name(dtype))  # type: ignore[attr-defined]
            for label, spec, mask in (
                    ("all", None, None), ("60%", {"field": "b", "in": [1, 2, 5, 7, 8, 9]},
                                          np.isin(idx % 10, [1, 2, 5, 7, 8, 9])),
                    ("1%", {"field": "rare", "eq": True}, idx % 100 == 0)):
                found = [{int(h.id) for h in hits}
                         for hits in store.search(dtype, queries, k=10, filter=spec)]
                got[dtype, label] = recall(found, exact_top_k(base, queries, 10, mask))
        assert all(r >= 0.95 for r in got.values()), got
        assert got["int8", "all"] >= got["float32", "all"] - 0.01, got
    finally:
        store.close()
