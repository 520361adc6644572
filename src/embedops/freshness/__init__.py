"""Keeping vectors fresh: stale detection and re-embedding, metadata backfill without
re-embedding. See docs/freshness.md."""
