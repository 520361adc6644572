"""The issue's hand-computed cases, reproduced exactly (decimal bytes: 1 TB = 1e12 B)."""

from __future__ import annotations

import math

import pytest

from embedops.cost import build_report, load_scenario
from embedops.cost.generation import passes_break_even
from embedops.cost.storage import hnsw_bytes_per_vector, raw_bytes
from embedops.cost.store_measured import MEASURED as MEASURED_STORE

TB = 1e12


def test_500m_docs_of_200_tokens_at_2_cents_per_mtok() -> None:
    report = build_report(load_scenario(documents=500_000_000, tokens_per_doc=200,
                                        api_price_per_mtok=0.02))
    assert report.generation.tokens == 100e9
    assert report.generation.api_cost_usd == pytest.approx(2000.0, rel=1e-12)


def test_500m_by_768_float32_is_1_5_tb_raw() -> None:
    s = build_report(load_scenario(documents=500_000_000, dim=768, dtype="float32")).storage
    assert s.raw_bytes == 1_536_000_000_000
    assert round(s.raw_bytes / TB, 1) == 1.5


def test_1b_by_768_float32_is_3_tb_raw_and_6_to_15_tb_index() -> None:
    s = build_report(load_scenario(documents=10**9, dim=768, dtype="float32",
                                   index_overhead_low=1, index_overhead_high=4)).storage
    assert s.raw_bytes == 3_072_000_000_000
    assert round(s.raw_bytes / TB) == 3
    assert s.index_bytes_low == 2 * s.raw_bytes
    assert s.index_bytes_high == 5 * s.raw_bytes
    assert (round(s.index_bytes_low / TB), round(s.index_bytes_high / TB)) == (6, 15)


def test_1b_docs_at_10k_per_second_take_27_8_hours() -> None:
    g = build_report(load_scenario(documents=10**9, gpu_docs_per_second=10_000)).generation
    assert g.time_to_embed_hours == pytest.approx(1e9 / 1e4 / 3600)
    assert round(g.time_to_embed_hours, 1) == 27.8
    assert g.gpu_hours == g.time_to_embed_hours


def test_workers_divide_wall_time_not_gpu_hours() -> None:
    g = build_report(load_scenario(documents=10**9, gpu_docs_per_second=10_000, gpus=4)).generation
    assert g.gpu_hours == pytest.approx(1e9 / 1e4 / 3600)
    assert g.time_to_embed_hours == pytest.approx(g.gpu_hours / 4)


def test_tokens_per_minute_throughput() -> None:
    # 1.2M tokens/min at 200 tokens/doc = 100 docs/s; 360,000 docs take one hour.
    g = build_report(load_scenario(documents=360_000, tokens_per_doc=200,
                                   gpu_tokens_per_minute=1_200_000, gpu_price_per_hour=3.0)
                     ).generation
    assert g.docs_per_second == pytest.approx(100.0)
    assert g.gpu_hours == pytest.approx(1.0)
    assert g.gpu_cost_usd == pytest.approx(3.0)
    assert g.self_hosted_usd_per_mtok == pytest.approx(3.0 / 72.0)


def test_hnsw_bytes_per_vector_by_hand() -> None:
    # 768 x 4 vector bytes + 2 x 16 links x 4 B + 16 x 4 / 15 upper-layer bytes
    assert hnsw_bytes_per_vector(768, 4, 16) == pytest.approx(3072 + 128 + 64 / 15)
    # at a connectivity other than the embedded store's, RAM follows that layout model
    s = build_report(load_scenario(documents=1000, dim=768, hnsw_m=32, replicas=3)).storage
    assert s.ram_bytes_per_replica == pytest.approx(1000 * (3072 + 256 + 128 / 31))
    assert s.ram_bytes == pytest.approx(3 * s.ram_bytes_per_replica)
    assert "layout" in s.ram_basis


def test_the_embedded_stores_ram_and_disk_come_from_its_measured_bytes() -> None:
    i8 = MEASURED_STORE["int8"]
    s8 = build_report(load_scenario(documents=10**9, dim=384, dtype="int8",
                                    replicas=2)).storage
    assert s8.ram_bytes_per_replica == pytest.approx(1e9 * i8.index_memory)
    assert s8.ram_bytes == pytest.approx(2 * s8.ram_bytes_per_replica)
    assert s8.embedded_store_disk_bytes == pytest.approx(1e9 * (i8.sqlite + i8.index_files))
    assert f"{i8.index_memory:,.0f} B/vector" in s8.ram_basis
    # int8 at dim 384 is measured; at dim 768 the vector's own bytes are added (1 B per
    # dimension in the index, 4 in SQLite, which keeps float32 for rescoring)
    s8 = build_report(load_scenario(documents=1000, dim=768, dtype="int8")).storage
    assert s8.ram_bytes_per_replica == pytest.approx(1000 * (i8.index_memory + 384))
    assert s8.embedded_store_disk_bytes == pytest.approx(
        1000 * (i8.sqlite + 384 * 4 + i8.index_files + 384))
    assert "scaled to int8 at dim 768" in s8.embedded_store_basis
    # float32 is the int8 measurement with 4-byte vectors in the index (and the index
    # file: measured on its own once, it agreed to the byte); float16 is scaled from int8
    # (SQLite keeps float32 for float32, float16 for float16)
    f32 = MEASURED_STORE["float32"]
    s32 = build_report(load_scenario(documents=1000, dim=384, dtype="float32")).storage
    assert s32.ram_bytes_per_replica == pytest.approx(1000 * f32.index_memory)
    assert s32.embedded_store_disk_bytes == pytest.approx(
        1000 * (f32.sqlite + f32.index_files))
    assert "measured: float32, dim 384" in s32.ram_basis and "scaled" not in s32.ram_basis
    assert f32.index_memory == pytest.approx(i8.index_memory + 384 * 3, abs=1)
    assert f32.index_files == pytest.approx(i8.index_files + 384 * 3, abs=1)
    s16 = build_report(load_scenario(documents=1000, dim=384, dtype="float16")).storage
    assert s16.ram_bytes_per_replica == pytest.approx(1000 * (i8.index_memory + 384))
    assert s16.embedded_store_disk_bytes == pytest.approx(
        1000 * (i8.sqlite - 384 * 2 + i8.index_files + 384))
    # every figure is a measurement, larger than the vector it holds
    assert i8.index_memory > i8.dim and i8.sqlite > i8.dim * 4 and i8.index_files > i8.dim


def test_nodes_round_up_per_replica_and_monthly_cost() -> None:
    # 1e6 x 1000-d float32 flat = 4 GB per replica; 3 GB nodes -> 2 per replica, 2 replicas.
    r = build_report(load_scenario(documents=10**6, dim=1000, index_type="flat", replicas=2,
                                   ram_per_node_gb=3, node_price_per_hour=1.0,
                                   storage_price_per_gb_month=0.5))
    assert r.storage.nodes_needed == 4
    assert r.storage.ram_nodes_usd_per_month == pytest.approx(4 * 730.0)
    assert r.storage.object_storage_usd_per_month == pytest.approx(4.0 * 0.5)


def test_query_distances_by_index_type() -> None:
    flat = build_report(load_scenario(documents=10_000, index_type="flat", qps=5)).query
    assert flat.distances_per_query == 10_000
    assert flat.distances_per_second == 50_000
    hnsw = build_report(load_scenario(documents=16**3, hnsw_m=16, ef_search=64, qps=2,
                                      node_distances_per_second=1000)).query
    assert hnsw.distances_per_query == pytest.approx(64 * 32 + 16 * 3)
    assert hnsw.nodes_needed == math.ceil(2 * (64 * 32 + 48) / 1000)
    ivf = build_report(load_scenario(documents=10_000, index_type="ivf", ivf_nlist=100,
                                     ivf_nprobe=8)).query
    assert ivf.distances_per_query == 100 + 8 * 100


def test_hnsw_search_depth_is_the_stores_own_unless_given() -> None:
    """Unset, ``ef_search`` is the depth the embedded store searches a graph of
    ``documents`` nodes at (64 up to 100k, 64 x sqrt(documents / 100k) above, at most
    512), and the report gives it as used."""
    depths = {n: build_report(load_scenario(documents=n)).to_dict()["inputs"]["ef_search"]
              for n in (10_000, 100_000, 1_000_000, 10**9)}
    assert depths == {10_000: 64, 100_000: 64, 1_000_000: 202, 10**9: 512}
    million = build_report(load_scenario(documents=10**6, hnsw_m=16)).query
    m_log = 16 * math.log(10**6) / math.log(16)
    assert million.distances_per_query == pytest.approx(202 * 32 + m_log)
    given = build_report(load_scenario(documents=10**6, ef_search=64))
    assert given.to_dict()["inputs"]["ef_search"] == 64
    assert given.query.distances_per_query == pytest.approx(64 * 32 + m_log)


def test_ivf_default_nlist_is_four_root_n() -> None:
    r = build_report(load_scenario(documents=10_000, index_type="ivf"))
    assert r.scenario.nlist == 400
    assert r.to_dict()["inputs"]["ivf_nlist"] == 400


def test_zero_qps_needs_no_query_nodes() -> None:
    assert build_report(load_scenario(qps=0)).query.nodes_needed == 0


def test_break_even_in_passes() -> None:
    # API $100 a pass, self-hosted $20 a pass + $400 setup: equal after 5 passes = 4 re-embeds.
    assert passes_break_even(400.0, 100.0, 20.0) == pytest.approx(4.0)
    assert passes_break_even(0.0, 100.0, 20.0) == 0.0
    assert passes_break_even(50.0, 100.0, 20.0) == 0.0
    assert passes_break_even(400.0, 20.0, 100.0) is None
    assert passes_break_even(400.0, 20.0, 20.0) is None


def test_break_even_monthly_tokens() -> None:
    # Worker $1/h -> $730/month; API $0.02/Mtok -> break-even at 730 / 0.02 = 36,500 Mtok,
    # within a 100 docs/s x 1000 tokens worker's 262,800 Mtok a month.
    g = build_report(load_scenario(gpu_price_per_hour=1.0, api_price_per_mtok=0.02,
                                   gpu_docs_per_second=100, tokens_per_doc=1000)).generation
    assert g.worker_tokens_per_month == pytest.approx(100 * 1000 * 3600 * 730)
    assert g.break_even_monthly_tokens == pytest.approx(36_500e6)
    slow = build_report(load_scenario(gpu_price_per_hour=1.0, api_price_per_mtok=0.02,
                                      gpu_docs_per_second=1, tokens_per_doc=10)).generation
    assert slow.break_even_monthly_tokens is None


def test_what_ifs_are_exact_ratios_of_the_baseline() -> None:
    w = build_report(load_scenario(documents=123_457, dim=768, dtype="float32")).what_ifs
    base = w["baseline"].raw_bytes
    assert base == raw_bytes(123_457, 768, 4)
    assert w["int8"].raw_bytes * 4 == base
    assert w["float16"].raw_bytes * 2 == base
    assert w["half_dim"].raw_bytes * 2 == base
    assert w["half_dim"].dim == 384
    assert w["int8"].index_bytes_high * 4 == pytest.approx(w["baseline"].index_bytes_high)
    assert w["int8"].ram_bytes < w["float16"].ram_bytes < w["baseline"].ram_bytes
