"""The ledger: durable record of documents, dead letters and runs per collection."""

from embedops.ledger.ledger import DeadLetter, DocRecord, Ledger

__all__ = ["DeadLetter", "DocRecord", "Ledger"]
