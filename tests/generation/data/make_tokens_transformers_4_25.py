"""Provenance of `tokens_transformers_4_25.json`: ids from transformers 4.25.1 itself.

rinna's pipeline used transformers 4.25's slow `T5Tokenizer` with `do_lower_case=True` and
`model_max_length=77`. Run this in a separate venv with `transformers==4.25.1 sentencepiece`
(the tests never need 4.25):  python make_tokens_transformers_4_25.py 0
It first checks the reference `tokens.json`, then writes the first 600 of 3000 random prompts
built from pieces that stress the tokenizer (special tokens, case, width, marks, controls).
"""

import json
import random
import sys
from pathlib import Path

from transformers import T5Tokenizer

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parents[1] / "reference"
PIECES = [
    *("ピカチュウ", "漫画の", "鳥", " ", "  ", "</s>", "<unk>", "<s>", "[PAD]", "[CLS]", "[SEP]"),
    *("[MASK]", "ABC", "Ｐｉｋａ", "ｶﾞｷﾞ", "ﾊﾟ", "İ", "ΟΔΟΣ", "ß", "\t", "\n", "😀", "　"),
    *("油絵", "、", "。", "!", "123", "ＡＢＣ", "ヴ", "ゔ", "\u200b", "\u202e", "e\u0301", "ﬁ"),
    *("①", "㍻", "<", "/s>", "[pad]", "</S>", "x" * 30, "の" * 40),
]


def main(seed: int) -> None:
    tok = T5Tokenizer.from_pretrained(REFERENCE / "tiny-pokemon-ja" / "tokenizer")
    tok.do_lower_case = True
    tok.model_max_length = 77

    def encode(text: str) -> list[int]:
        return tok(text, padding="max_length", max_length=77, truncation=True).input_ids

    for case in json.loads((REFERENCE / "tokens.json").read_text("utf-8")):
        assert encode(case["prompt"]) == case["input_ids"], case["prompt"]
    rng = random.Random(seed)
    cases = []
    for _ in range(3000):
        text = "".join(rng.choice(PIECES) for _ in range(rng.randint(0, 12)))
        cases.append({"prompt": text, "input_ids": encode(text)})
    out = HERE / "tokens_transformers_4_25.json"
    out.write_text(json.dumps(cases[:600], ensure_ascii=False, indent=0), "utf-8")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
