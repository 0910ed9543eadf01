"""A tiny random-weight English→Japanese MarianMT model, built in code for the tests.

The layout is a real MarianMT checkpoint's (what `staka/fugumt-en-ja` ships): `source.spm` and
`target.spm` (SentencePiece models trained here on a few English and Japanese captions),
`vocab.json` (both models' pieces, one joint vocabulary), the tokenizer's config, and
`config.json` + `model.safetensors` from `MarianMTModel(MarianConfig(...))` with tiny dimensions.
Its weights are drawn wide (`init_std=1.0`) so that different inputs give different outputs.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

ENGLISH = [
    "a fire dragon with blue wings",
    "a cute water turtle",
    "an electric mouse in a forest",
    "blurry, low quality, bad anatomy",
    "a grass cat sleeping under a tree",
    "red eyes and a long tail",
    "the small bird flies over the sea",
    "ugly, deformed, watermark",
]
JAPANESE = [
    "青い翼の炎のドラゴン",
    "かわいい水のカメ",
    "森の中の電気ネズミ",
    "ぼやけた、低品質、悪い解剖学",
    "木の下で眠る草の猫",
    "赤い目と長い尻尾",
    "小さな鳥が海の上を飛ぶ",
    "醜い、変形した、透かし",
]
SPECIALS = {"<pad>": 0, "</s>": 1, "<unk>": 2}


def _sentencepiece(lines: list[str]) -> bytes:
    import sentencepiece as spm

    model = io.BytesIO()
    spm.SentencePieceTrainer.train(  # pyright: ignore[reportUnknownMemberType]
        sentence_iterator=iter(lines * 4),
        model_writer=model,
        vocab_size=80,
        model_type="unigram",
        character_coverage=1.0,
        hard_vocab_limit=False,
        minloglevel=2,
        pad_id=0,
        eos_id=1,
        unk_id=2,
        bos_id=-1,
    )
    return model.getvalue()


def build_tiny_marian(folder: Path, *, seed: int = 0) -> Path:
    """Write the tiny model into `folder` (created) and return it."""
    import sentencepiece as spm
    import torch
    from transformers import MarianConfig, MarianMTModel, MarianTokenizer

    folder.mkdir(parents=True, exist_ok=True)
    source, target = _sentencepiece(ENGLISH), _sentencepiece(JAPANESE)
    (folder / "source.spm").write_bytes(source)
    (folder / "target.spm").write_bytes(target)
    vocab = dict(SPECIALS)
    for blob in (source, target):
        processor = spm.SentencePieceProcessor(model_proto=blob)
        for index in range(processor.get_piece_size()):
            vocab.setdefault(processor.id_to_piece(index), len(vocab))
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), "utf-8")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "Recommended: pip install sacremoses"
        tokenizer = MarianTokenizer(
            str(folder / "source.spm"),
            str(folder / "target.spm"),
            str(folder / "vocab.json"),
            source_lang="en",
            target_lang="ja",
        )
    tokenizer.save_pretrained(folder)
    torch.manual_seed(seed)
    config = MarianConfig(
        vocab_size=len(vocab),
        d_model=16,
        encoder_layers=1,
        decoder_layers=1,
        encoder_attention_heads=2,
        decoder_attention_heads=2,
        encoder_ffn_dim=32,
        decoder_ffn_dim=32,
        max_position_embeddings=256,
        pad_token_id=SPECIALS["<pad>"],
        eos_token_id=SPECIALS["</s>"],
        forced_eos_token_id=SPECIALS["</s>"],
        decoder_start_token_id=SPECIALS["<pad>"],
        init_std=1.0,
    )
    MarianMTModel(config).save_pretrained(folder)
    return folder
