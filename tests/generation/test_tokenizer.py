"""RinnaTokenizer against the original pipeline's ids, and against transformers 4.25's algorithm.

Expected ids in the hand-written cases are derived from 4.25's slow T5Tokenizer as rinna's
pipeline configured it (see tests/reference/README.md): special tokens kept, the rest lower-cased
per character and encoded by sentencepiece, cut to 76, `</s>` appended unless already last,
`[PAD]` (3) to 77. In the tiny vocabulary: `<unk>`=0, `<s>`=1, `</s>`=2, `[PAD]`=3, `[CLS]`=4,
`[SEP]`=5, `[MASK]`=6, `▁`=7, and e.g. `青`=33, `い`=9, `ドラゴン`=29.
"""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from generation.tokenizer import MAX_LENGTH, RinnaTokenizer, TokenizerLoadError, _Trie

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
TOKENS = json.loads((REFERENCE / "tokens.json").read_text("utf-8"))
EOS, PAD, MASK = 2, 3, 6
AOI = [7, 33, 9]  # "青い" → ▁ 青 い
DRAGON = [7, 29]  # "ドラゴン" → ▁ ドラゴン


@pytest.fixture(scope="module")
def tok(tiny_model: Path) -> RinnaTokenizer:
    return RinnaTokenizer.from_folder(tiny_model)


def padded(ids: list[int]) -> tuple[int, ...]:
    return tuple(ids + [PAD] * (MAX_LENGTH - len(ids)))


@pytest.mark.parametrize("case", TOKENS, ids=[c["prompt"][:20] for c in TOKENS])
def test_reference_prompt_encodes_to_exactly_the_original_pipeline_ids(tok, case):
    assert list(tok.encode(case["prompt"]).ids) == case["input_ids"]


def test_reference_long_prompt_reports_its_full_length_and_truncation(tok):
    long_prompt = TOKENS[-1]["prompt"]
    encoded = tok.encode(long_prompt)
    assert encoded.truncated is True
    assert encoded.count == len(tok.tokenize(long_prompt)) + 1
    assert encoded.count > MAX_LENGTH
    assert encoded.ids[-1] == EOS


@pytest.mark.parametrize(
    ("prompt", "expected", "count"),
    [
        ("", [EOS], 1),
        ("   \u3000\t", [EOS], 1),
        # Uppercase is lowered: the vocabulary's "▁P", "A", "B" pieces are never reached.
        ("AB", [7, 72, 192, EOS], 4),
        ("PIKA", [7, 0, 13, 61, 72, EOS], 6),
        # Full-width uppercase lowers to full-width lowercase, which sentencepiece folds to ASCII.
        ("ＰＩＫＡ", [7, 0, 13, 61, 72, EOS], 6),
        # Half-width katakana with voiced marks is folded by sentencepiece's own normaliser.
        ("ﾄﾞﾗｺﾞﾝ", [*DRAGON, EOS], 3),
        # A special token with or without whitespace around it: the whitespace goes.
        ("青い[MASK]ドラゴン", [*AOI, MASK, *DRAGON, EOS], 7),
        ("青い [MASK] ドラゴン", [*AOI, MASK, *DRAGON, EOS], 7),
        ("青い\u3000\t[MASK]\n ドラゴン", [*AOI, MASK, *DRAGON, EOS], 7),
        ("[CLS][SEP]", [4, 5, EOS], 3),
        ("[PAD]<unk><s>", [PAD, 0, 1, EOS], 4),
        # Special tokens match case-sensitively before lowering: "[mask]" is plain text...
        ("[mask]", [7, 0, 114, 72, 191, 61, 0, EOS], 8),
        # ...and "[Mask]" lowers to it; but "</S>" and "<S>" lower *into* special tokens.
        ("[Mask]", [7, 0, 114, 72, 191, 61, 0, EOS], 8),
        ("<S>ドラゴン", [1, *DRAGON, EOS], 4),
        # Already ending in </s>: no second one (T5's _add_eos_if_not_present).
        ("ドラゴン</s>", [*DRAGON, EOS], 3),
        ("ドラゴン </S>", [*DRAGON, EOS], 3),
        ("</s>", [EOS], 1),
        ("</s>ドラゴン", [EOS, *DRAGON, EOS], 4),
    ],
)
def test_hand_derived_prompt_encodes_to_expected_ids_and_count(tok, prompt, expected, count):
    encoded = tok.encode(prompt)
    assert encoded.ids == padded(expected)
    assert encoded.count == count
    assert encoded.truncated is False


def test_prompt_of_exactly_76_tokens_keeps_them_all(tok):
    encoded = tok.encode("[MASK]" * 76)
    assert encoded.ids == tuple([MASK] * 76 + [EOS])
    assert (encoded.count, encoded.truncated) == (77, False)


def test_prompt_of_77_tokens_is_cut_to_76_plus_eos(tok):
    encoded = tok.encode("[MASK]" * 77)
    assert encoded.ids == tuple([MASK] * 76 + [EOS])
    assert (encoded.count, encoded.truncated) == (78, True)


def test_prompt_of_77_tokens_ending_in_eos_is_kept_whole(tok):
    encoded = tok.encode("[MASK]" * 76 + "</s>")
    assert encoded.ids == tuple([MASK] * 76 + [EOS])
    assert (encoded.count, encoded.truncated) == (77, False)


def test_prompt_of_76_tokens_ending_in_eos_gets_no_second_eos_and_one_pad(tok):
    encoded = tok.encode("[MASK]" * 75 + "</s>")
    assert encoded.ids == tuple([MASK] * 75 + [EOS, PAD])
    assert encoded.count == 76


def test_cut_landing_on_a_typed_eos_appends_nothing_and_pads(tok):
    # 75 masks, </s>, 5 masks = 81 ids; 4.25 cuts 5 (81 + 1 - 77), leaving a trailing </s>.
    encoded = tok.encode("[MASK]" * 75 + "</s>" + "[MASK]" * 5)
    assert encoded.ids == tuple([MASK] * 75 + [EOS, PAD])
    assert (encoded.count, encoded.truncated) == (82, True)


def test_long_japanese_prompt_is_cut_and_ends_with_eos(tok):
    encoded = tok.encode("青いドラゴン、" * 40)
    assert len(encoded.ids) == MAX_LENGTH
    assert encoded.ids[-1] == EOS
    assert PAD not in encoded.ids
    assert encoded.truncated is True
    assert encoded.count > MAX_LENGTH


def test_lowercasing_is_per_character_so_a_final_sigma_stays_sigma(tok):
    # 4.25 lowers with the regex `(.+?)`, one character at a time; str.lower() on the whole
    # word would give a final "ς".
    assert tok.tokenize("ΟΔΟΣ") == ["▁", "οδοσ"]


def test_same_prompt_in_upper_and_lower_case_gives_same_ids(tok):
    assert tok.encode("BLUE DRAGON ドラゴン").ids == tok.encode("blue dragon ドラゴン").ids


def test_from_folder_accepts_the_model_folder_or_its_tokenizer_folder(tiny_model):
    a = RinnaTokenizer.from_folder(tiny_model)
    b = RinnaTokenizer.from_folder(tiny_model / "tokenizer")
    assert a.encode("漫画の鳥") == b.encode("漫画の鳥")


def test_folder_without_spiece_model_is_one_clear_error(tmp_path):
    with pytest.raises(TokenizerLoadError, match=r"spiece\.model is missing"):
        RinnaTokenizer.from_folder(tmp_path)


def _tokenizer_copy(tmp_path: Path, tiny_model: Path, **config_changes: object) -> Path:
    folder = tmp_path / "tokenizer"
    shutil.copytree(tiny_model / "tokenizer", folder)
    config = json.loads((folder / "tokenizer_config.json").read_text("utf-8"))
    config.update(config_changes)
    (folder / "tokenizer_config.json").write_text(json.dumps(config), "utf-8")
    return folder


def test_extra_ids_map_to_the_end_of_the_vocabulary_case_insensitively(tmp_path, tiny_model):
    folder = _tokenizer_copy(tmp_path, tiny_model, extra_ids=2, additional_special_tokens=[])
    tok = RinnaTokenizer.from_folder(folder)
    # T5: <extra_id_N> → vocab_size - N - 1, vocab_size = 200 pieces + 2 extra ids.
    assert tok.encode("<extra_id_0> <extra_id_1>").ids == padded([201, 200, EOS])
    assert tok.encode("<EXTRA_ID_0>").ids == padded([201, EOS])


def test_special_token_missing_from_vocabulary_gets_the_next_id(tmp_path, tiny_model):
    folder = _tokenizer_copy(tmp_path, tiny_model)
    special_map = json.loads((folder / "special_tokens_map.json").read_text("utf-8"))
    special_map["additional_special_tokens"] = ["<pokemon>"]
    (folder / "special_tokens_map.json").write_text(json.dumps(special_map), "utf-8")
    tok = RinnaTokenizer.from_folder(folder)
    assert tok.encode("青い <pokemon> ドラゴン").ids == padded([*AOI, 200, *DRAGON, EOS])


def test_trie_splits_exactly_like_transformers_trie_on_random_text():
    """The split algorithm is 4.25's; transformers 5 still ships the same Trie, so compare."""
    from transformers.tokenization_python import Trie

    rng = random.Random(1234)
    alphabet = "ab<>/sx"
    for _ in range(3000):
        words = ["".join(rng.choices(alphabet, k=rng.randint(1, 4))) for _ in range(3)]
        text = "".join(rng.choices(alphabet, k=rng.randint(0, 14)))
        reference = Trie()
        for word in words:
            reference.add(word)
        assert _Trie(words).split(text) == reference.split(text), (words, text)


TRANSFORMERS_4_25 = json.loads(
    (Path(__file__).parent / "data" / "tokens_transformers_4_25.json").read_text("utf-8")
)


def test_600_unseen_prompts_match_transformers_4_25_exactly(tok):
    """Ids recorded from transformers 4.25.1's own slow T5Tokenizer (see data/make_*.py)."""
    mismatches = [
        c["prompt"]
        for c in TRANSFORMERS_4_25
        if list(tok.encode(c["prompt"]).ids) != c["input_ids"]
    ]
    assert len(TRANSFORMERS_4_25) == 600
    assert mismatches == []


@pytest.mark.parametrize(
    ("file", "content"),
    [
        ("tokenizer_config.json", {"extra_ids": "many"}),
        ("added_tokens.json", {"<pokemon>": "two hundred"}),
    ],
)
def test_malformed_number_in_tokenizer_files_is_one_clear_error(
    tmp_path, tiny_model, file, content
):
    folder = _tokenizer_copy(tmp_path, tiny_model)
    path = folder / file
    data = json.loads(path.read_text("utf-8")) if path.is_file() else {}
    data.update(content)
    path.write_text(json.dumps(data), "utf-8")
    with pytest.raises(TokenizerLoadError, match=f"bad tokenizer settings in {folder}"):
        RinnaTokenizer.from_folder(folder)
