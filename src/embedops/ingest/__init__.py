"""Ingestion: the batch and real-time drivers of preprocess -> chunk -> embed -> store."""
