"""Domain fine-tuning: training pairs, BM25 hard negatives, contrastive training, held-out
metrics and lineage. A trained model registers under a name of its own
(``embedders/named_models.py``) and is rolled out with ``embedops migrate start``."""

from embedops.finetune.pairs import Pair, read_pairs, synthetic_pairs, write_pairs
from embedops.finetune.split import Split, split_pairs

__all__ = ["Pair", "Split", "read_pairs", "split_pairs", "synthetic_pairs", "write_pairs"]
