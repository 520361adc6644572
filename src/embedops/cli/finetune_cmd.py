"""`embedops finetune pairs|train`: adapt a model to a domain, then migrate to it."""

from __future__ import annotations

import contextlib
import sys
from pathlib import Path
from typing import Annotated, Any

import typer

from embedops.cli.context import (
    JsonOption,
    console,
    err_console,
    handle_errors,
    print_json,
    settings_from,
    wants_json,
)
from embedops.errors import ConfigError

app = typer.Typer(help="Domain fine-tuning: training pairs, BM25 hard negatives, "
                  "contrastive training, held-out recall@10 before and after.",
                  no_args_is_help=True)


@app.command()
def pairs(
    ctx: typer.Context,
    source: Annotated[Path, typer.Option(
        "--from", help="A BEIR directory (queries, qrels, corpus), a JSONL of {query, "
        "positive} or of click logs {query, clicked_id}, or with --synthetic a corpus JSONL.")],
    out: Annotated[Path, typer.Option("--out", help="The pairs file to write (JSONL).")],
    synthetic: Annotated[bool, typer.Option(
        "--synthetic", help="Derive pairs from a corpus alone: title -> text, "
        "sentence -> its passage (marked synthetic).")] = False,
    corpus: Annotated[Path | None, typer.Option(
        help="Corpus (BEIR directory or corpus JSONL) that click-log ids refer to.")] = None,
    split: Annotated[str, typer.Option(help="qrels split of a BEIR directory.")] = "test",
    seed: Annotated[int, typer.Option(help="Seed of the synthetic choice.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Write training pairs (query, positive, known relevant ids) to OUT."""
    from embedops.finetune import pairs as p
    from embedops.finetune.pipeline import load_extra_corpus

    with handle_errors():
        if synthetic:
            path = source / "corpus.jsonl" if source.is_dir() else source
            found = p.synthetic_pairs(path, seed=seed)
        elif source.is_dir():
            found = p.pairs_from_beir(source, split)
        else:
            found = p.pairs_from_jsonl(source, load_extra_corpus(corpus) if corpus else None)
        written = p.write_pairs(found, out)
    summary = {"out": str(out), "pairs": written,
               "queries": len({x.query_id for x in found}),
               "synthetic": sum(1 for x in found if x.synthetic)}
    if wants_json(ctx, json_out):
        print_json(summary)
    else:
        console.print(f"{written} pairs ({summary['queries']} queries, "
                      f"{summary['synthetic']} synthetic) -> {out}", highlight=False)


@app.command()
def train(
    ctx: typer.Context,
    pairs_file: Annotated[Path, typer.Option("--pairs", help="Pairs file from "
                                             "`embedops finetune pairs`.")],
    out: Annotated[Path, typer.Option("--out", help="Model directory to write "
                                      "(e.g. models/NAME).")],
    base: Annotated[str, typer.Option(help="Base model: all-MiniLM-L6-v2, "
                                      "all-mpnet-base-v2 or a local model directory.")]
    = "all-MiniLM-L6-v2",
    name: Annotated[str | None, typer.Option(
        help="Name to register the model under (default: the --out directory's name).")]
    = None,
    epochs: Annotated[float, typer.Option(help="Passes over the training pairs.")] = 3.0,
    lr: Annotated[float, typer.Option(help="Peak learning rate.")] = 2e-5,
    hard_negatives: Annotated[int, typer.Option(
        help="BM25 hard negatives per query (0: in-batch negatives only).")] = 5,
    batch_size: Annotated[int, typer.Option(help="Pairs per batch.")] = 32,
    eval_split: Annotated[float, typer.Option(
        help="Share of queries held out for the before/after metrics.")] = 0.1,
    corpus: Annotated[Path | None, typer.Option(
        help="More documents to mine negatives from and search (BEIR directory or "
        "corpus JSONL); the positives are always included.")] = None,
    ablation: Annotated[bool, typer.Option(
        "--ablation", help="Also train without hard negatives and report both.")] = False,
    seed: Annotated[int, typer.Option(help="Seed of the split, the negatives fill-up and "
                                      "training.")] = 0,
    json_out: JsonOption = False,
) -> None:
    """Fine-tune BASE on PAIRS; save the model and training.json in OUT; register it."""
    from embedops.finetune.pipeline import train_model
    from embedops.finetune.trainer import Hyperparameters

    settings = settings_from(ctx)
    as_json = wants_json(ctx, json_out)
    with handle_errors():
        _need_training_packages()
        params = Hyperparameters(epochs=epochs, lr=lr, batch_size=batch_size,
                                 hard_negatives=hard_negatives, seed=seed)
        with contextlib.redirect_stdout(sys.stderr):  # the trainer's own log lines
            record = train_model(
                pairs_file, out, settings.cache_dir, base=base, params=params,
                eval_split=eval_split, name=name, corpus_path=corpus, ablation=ablation,
                progress=True,
                notify=lambda line: err_console.print(line, highlight=False))
    if as_json:
        print_json(record)
    else:
        _show(record)


def _need_training_packages() -> None:
    import importlib.util

    missing = [m for m in ("sentence_transformers", "datasets", "accelerate", "bm25s")
               if importlib.util.find_spec(m) is None]
    if missing:
        raise ConfigError(f"fine-tuning needs {', '.join(missing)}: "
                          "pip install 'embedops[finetune]'")


def _show(record: dict[str, Any]) -> None:
    metrics = record["metrics"]
    console.print(f"[bold]{record['name']}[/bold] fingerprint={record['fingerprint']} "
                  f"(base {record['base_model']['name']})", highlight=False)
    for label, key in (("before", "before"), ("after", "after"),
                       ("after, no hard negatives", "after_without_hard_negatives")):
        if key in metrics:
            m = metrics[key]
            console.print(f"  {label}: recall@10 {m['recall@10']:.4f}  nDCG@10 "
                          f"{m['ndcg@10']:.4f}  ({m['queries']} held-out queries)",
                          highlight=False)
    console.print(f"  trained in {record['seconds']['train']} s on {record['device']}; "
                  f"roll out with: embedops migrate start ALIAS --to {record['name']}",
                  highlight=False)


@app.command()
def register(
    ctx: typer.Context,
    directory: Annotated[Path, typer.Argument(help="A sentence-transformers model directory.")],
    name: Annotated[str | None, typer.Option(
        help="Name to register it under (default: the directory's name).")] = None,
    json_out: JsonOption = False,
) -> None:
    """Register a model directory (trained here or copied from elsewhere) under a name."""
    from embedops.embedders.local import LocalModel
    from embedops.embedders.named_models import register as register_name

    settings = settings_from(ctx)
    with handle_errors():
        chosen = name or directory.resolve().name
        register_name(chosen, directory, settings.cache_dir)
        info = LocalModel.resolve(chosen, settings.cache_dir).info("torch", "fp32")
    result = {"name": info.name, "directory": info.source, "fingerprint": info.fingerprint}
    if wants_json(ctx, json_out):
        print_json(result)
    else:
        console.print(f"{info.name} -> {info.source} (fingerprint {info.fingerprint})",
                      highlight=False)
