"""The ledger: durable record of documents, dead letters and runs per collection."""

from embedops.ledger.ledger import DeadLetter, DocContent, DocRecord, Ledger, StoredDocument

__all__ = ["DeadLetter", "DocContent", "DocRecord", "Ledger", "StoredDocument"]
