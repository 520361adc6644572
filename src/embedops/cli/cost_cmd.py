"""`embedops cost`: generation, storage and query cost of a scenario, with what-ifs."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer
from rich.table import Table

from embedops.cli.context import JsonOption, console, handle_errors, print_json, wants_json

Num = float | None
Whole = int | None


def _opt(flag: str, text: str) -> Any:
    return typer.Option(flag, help=text, show_default=False)


ScenarioFile = Annotated[Path | None, _opt("--scenario", "TOML scenario file; flags override it.")]
Documents = Annotated[str | None, _opt("--documents", "Corpus size: 5e8, 500M, 1B.")]
TokensPerDoc = Annotated[Num, _opt("--tokens-per-doc", "Mean tokens per document.")]
Dim = Annotated[Whole, _opt("--dim", "Embedding dimension.")]
Dtype = Annotated[str | None, _opt("--dtype", "Stored dtype: float32, float16, int8.")]
IndexType = Annotated[str | None, _opt("--index-type", "Index: hnsw, ivf, flat.")]
HnswM = Annotated[Whole, _opt("--hnsw-m", "HNSW connectivity M.")]
EfSearch = Annotated[Whole, _opt("--ef-search", "HNSW ef_search (candidates per query); "
                                 "default: the store's own depth for --documents.")]
IvfNlist = Annotated[Whole, _opt("--ivf-nlist", "IVF lists (default 4*sqrt(documents)).")]
IvfNprobe = Annotated[Whole, _opt("--ivf-nprobe", "IVF lists probed per query.")]
OverLow = Annotated[Num, _opt("--index-overhead-low", "Index footprint = raw x (1 + this).")]
OverHigh = Annotated[Num, _opt("--index-overhead-high", "Index footprint = raw x (1 + this).")]
Replicas = Annotated[Whole, _opt("--replicas", "Copies of the RAM-resident index.")]
Qps = Annotated[Num, _opt("--qps", "Queries per second.")]
ReEmbeds = Annotated[Num, _opt("--re-embeds-per-year", "Full re-embeds a year (upgrades).")]
ApiPrice = Annotated[Num, _opt("--api-price-per-mtok", "API price, USD per 1M tokens.")]
GpuPrice = Annotated[Num, _opt("--gpu-price-per-hour", "Self-hosted worker, USD per hour.")]
GpuDocs = Annotated[Num, _opt("--gpu-docs-per-second", "Self-hosted docs/s per worker "
                               "(default: the measured speed of the model of --dim).")]
GpuTpm = Annotated[Num, _opt("--gpu-tokens-per-minute", "Self-hosted tokens/min per worker.")]
Gpus = Annotated[Whole, _opt("--gpus", "Self-hosted workers in parallel.")]
Setup = Annotated[Num, _opt("--self-hosted-setup-usd", "One-off cost of self-hosting.")]
StorePrice = Annotated[Num, _opt("--storage-price-per-gb-month", "Object storage USD/GB-month.")]
NodeRam = Annotated[Num, _opt("--ram-per-node-gb", "Index RAM per node, decimal GB.")]
NodePrice = Annotated[Num, _opt("--node-price-per-hour", "RAM node, USD per hour.")]
NodeRate = Annotated[Num, _opt("--node-distances-per-second", "Distance computations/s/node.")]


def cost(
    ctx: typer.Context,
    documents: Documents = None, tokens_per_doc: TokensPerDoc = None, dim: Dim = None,
    dtype: Dtype = None, index_type: IndexType = None, hnsw_m: HnswM = None,
    ef_search: EfSearch = None, ivf_nlist: IvfNlist = None, ivf_nprobe: IvfNprobe = None,
    index_overhead_low: OverLow = None, index_overhead_high: OverHigh = None,
    replicas: Replicas = None, qps: Qps = None, re_embeds_per_year: ReEmbeds = None,
    api_price_per_mtok: ApiPrice = None, gpu_price_per_hour: GpuPrice = None,
    gpu_docs_per_second: GpuDocs = None, gpu_tokens_per_minute: GpuTpm = None,
    gpus: Gpus = None, self_hosted_setup_usd: Setup = None,
    storage_price_per_gb_month: StorePrice = None, ram_per_node_gb: NodeRam = None,
    node_price_per_hour: NodePrice = None, node_distances_per_second: NodeRate = None,
    scenario: ScenarioFile = None,
    json_out: JsonOption = False,
) -> None:
    """Estimate embedding, storage and query cost, API vs self-hosted, with what-ifs.

    Inputs come from defaults (docs/cost.md gives each source), a TOML --scenario file,
    then flags; the assumptions are printed above the tables. Bytes are decimal
    (1 TB = 1e12 bytes); money is USD.
    """
    # Every parameter except these four is a Scenario input of the same name.
    overrides = {k: v for k, v in locals().items()
                 if k not in ("ctx", "scenario", "json_out", "documents")}
    from embedops.cost import build_report, load_scenario
    from embedops.cost.units import parse_count

    with handle_errors():
        if documents is not None:
            overrides["documents"] = parse_count("documents", documents)
        report = build_report(load_scenario(scenario, **overrides))
    if wants_json(ctx, json_out):
        print_json(report.to_dict())
        return
    _print_tables(report.to_dict())


def _money(x: float | None) -> str:
    return "never" if x is None else f"${x:,.2f}"


def _count(x: float | None) -> str:
    return "never" if x is None else f"{x:,.4g}" if x < 1e4 else f"{x:,.0f}"


def _table(title: str, rows: list[tuple[str, str]]) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column("quantity")
    table.add_column("value", justify="right")
    for name, value in rows:
        table.add_row(name, value)
    return table


def _print_tables(r: dict[str, Any]) -> None:
    from embedops.cost.units import format_bytes as fb

    g, s, q, i = r["generation"], r["storage"], r["query"], r["inputs"]
    console.print(_assumptions_table(r["assumptions"]))
    console.print(_table("generation (one pass = the initial embed or one re-embed)", [
        ("tokens per pass", _count(g["tokens"])),
        ("API cost per pass", _money(g["api_cost_usd"])),
        ("self-hosted hours per pass", f"{g['gpu_hours']:,.1f} h"),
        ("self-hosted cost per pass", _money(g["gpu_cost_usd"])),
        (f"time to embed ({i['gpus']} worker(s), {_count(g['docs_per_second'])} docs/s each)",
         f"{g['time_to_embed_hours']:,.1f} h"),
        ("self-hosted USD per 1M tokens", f"${g['self_hosted_usd_per_mtok']:,.4g}"),
        (f"first year ({g['first_year_passes']:g} passes): API",
         _money(g["first_year_api_cost_usd"])),
        ("first year: self-hosted (with setup)", _money(g["first_year_gpu_cost_usd"])),
        ("break-even, re-embeds", _count(g["break_even_re_embeds"])),
        ("break-even, monthly tokens (1 always-on worker)",
         _count(g["break_even_monthly_tokens"])),
    ]))
    console.print(_table("storage", [
        ("raw vectors", fb(s["raw_bytes"])),
        ("index footprint", f"{fb(s['index_bytes_low'])} – {fb(s['index_bytes_high'])}"),
        (f"RAM ({i['index_type']}, {i['replicas']} replica(s))", fb(s["ram_bytes"])),
        ("embedded store on disk (SQLite + index, measured)",
         fb(s["embedded_store_disk_bytes"])),
        (f"RAM nodes at {i['ram_per_node_gb']:g} GB", str(s["nodes_needed"])),
        ("object storage per month", _money(s["object_storage_usd_per_month"])),
        ("RAM nodes per month", _money(s["ram_nodes_usd_per_month"])),
    ]))
    console.print(r["units"]["index_footprint_vs_ram"])
    console.print(f"RAM: {s['ram_basis']}")
    console.print(_table(f"query at {i['qps']:g} qps", [
        ("distance computations per query", _count(q["distances_per_query"])),
        ("distance computations per second", _count(q["distances_per_second"])),
        ("query nodes", str(q["nodes_needed"])),
    ]))
    console.print(_what_if_table(r["what_ifs"]))
    console.print("bytes are decimal (1 GB = 1e9 B, 1 TB = 1e12 B); a month is 730 hours")


def _assumptions_table(assumptions: dict[str, Any]) -> Table:
    table = Table(title="assumptions (defaults are examples: override each with its flag)",
                  title_justify="left")
    table.add_column("assumption")
    table.add_column("value")
    table.add_column("source", overflow="fold")
    for a in assumptions.values():
        value = a["value"]
        shown = (" to ".join(f"{v:g}" for v in value) if isinstance(value, list)
                 else f"{value:,.4g}" if value < 1e6 else f"{value:,.0f}")
        table.add_row(a["label"], f"{shown} {a['unit']}", a["source"])
    return table


def _what_if_table(what_ifs: dict[str, Any]) -> Table:
    from embedops.cost.units import format_bytes as fb

    table = Table(title="what-ifs", title_justify="left")
    for column in ("variant", "dim", "dtype", "raw", "index footprint", "RAM", "RAM nodes",
                   "storage $/month"):
        table.add_column(column, justify="left" if column == "variant" else "right")
    for w in what_ifs.values():
        table.add_row(w["name"], str(w["dim"]), w["dtype"], fb(w["raw_bytes"]),
                      f"{fb(w['index_bytes_low'])} – {fb(w['index_bytes_high'])}",
                      fb(w["ram_bytes"]), str(w["ram_nodes"]), _money(w["storage_usd_per_month"]))
    return table
