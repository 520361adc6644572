"""A tiny random CLIP (transformers' ``CLIPModel`` with small sizes) saved to a directory
with a word-level tokenizer and an image preprocessor config: the shape of a real CLIP
directory, built offline in a second."""

from __future__ import annotations

import json
from pathlib import Path

WORDS = (
    "a", "an", "the", "of", "photo", "picture", "red", "green", "blue", "yellow", "car", "cat",
    "dog", "square", "circle", "striped", "gradient", "dark", "light", "sound", "voice", "tone",
    "report", "about", "refunds",
)
IMAGE_SIZE = 32
PROJECTION = 16


def build_tiny_clip(target: Path, seed: int = 0) -> Path:
    """Save a random CLIP (projection 16-d, 32 px images) and its tokenizer to ``target``."""
    import torch
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors
    from transformers import CLIPConfig, CLIPModel

    vocab = {"<pad>": 0, "<unk>": 1, "<bos>": 2, "<eos>": 3,
             **{w: i + 4 for i, w in enumerate(WORDS)}}
    tokenizer = Tokenizer(models.WordLevel(vocab, unk_token="<unk>"))
    tokenizer.normalizer = normalizers.Lowercase()
    tokenizer.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<bos> $A <eos>", special_tokens=[("<bos>", 2), ("<eos>", 3)])
    config = CLIPConfig(
        text_config={"vocab_size": len(vocab), "hidden_size": 32, "intermediate_size": 64,
                     "num_hidden_layers": 2, "num_attention_heads": 2,
                     "max_position_embeddings": 77, "bos_token_id": 2, "eos_token_id": 3,
                     "pad_token_id": 0},
        vision_config={"hidden_size": 32, "intermediate_size": 64, "num_hidden_layers": 2,
                       "num_attention_heads": 2, "image_size": IMAGE_SIZE, "patch_size": 8},
        projection_dim=PROJECTION)
    torch.manual_seed(seed)
    target.mkdir(parents=True, exist_ok=True)
    CLIPModel(config).eval().save_pretrained(str(target))
    tokenizer.save(str(target / "tokenizer.json"))
    (target / "preprocessor_config.json").write_text(json.dumps({
        "crop_size": {"height": IMAGE_SIZE, "width": IMAGE_SIZE},
        "size": {"shortest_edge": IMAGE_SIZE},
        "image_mean": [0.5, 0.5, 0.5], "image_std": [0.25, 0.25, 0.25]}))
    return target


def perturb_tower(model_dir: Path, tower: str, scale: float = 0.05) -> None:
    """Change one tower's weights in place (a new version of that tower only)."""
    import torch
    from safetensors.torch import load_file, save_file

    path = model_dir / "model.safetensors"
    state = load_file(str(path))
    prefix = "text_model." if tower == "text" else "vision_model."
    generator = torch.Generator().manual_seed(7)
    for name, tensor in state.items():
        if name.startswith(prefix) and tensor.is_floating_point():
            state[name] = tensor + scale * torch.randn(tensor.shape, generator=generator)
    save_file(state, str(path), metadata={"format": "pt"})
