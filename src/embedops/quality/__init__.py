"""Retrieval quality: IR metrics, evaluation runs, canaries."""
