"""The rinna-compatible prompt tokenizer: sentencepiece, exactly as transformers 4.25's slow T5Tokenizer.

The model was trained with rinna's `JapaneseStableDiffusionPipeline`, which used the slow
`T5Tokenizer` of transformers 4.2x with `do_lower_case = True` and `model_max_length = 77`.
transformers 5 no longer behaves that way (see `tests/reference/README.md`), so this module
re-implements that behaviour on the `sentencepiece` library alone. It imports neither torch nor
transformers, so `pokemon-bot tokens` starts fast.

The algorithm, step by step (each mirrors a line of transformers 4.25):

1. Lower-case the text one character at a time, except where a special or added token
   (matched case-sensitively, in 4.25's alternation order) starts.
2. Split the text on special/added tokens (4.25's `Trie.split`: the earliest match, then the
   longest one starting there) and strip whitespace next to each (both sides, unless the
   checkpoint declares the token as an `AddedToken` with its own `lstrip`/`rstrip`).
3. Encode every other segment with sentencepiece as pieces; pieces → ids with `piece_to_id`
   (unknown → `<unk>`); `<extra_id_N>` → `vocab_size - N - 1`; added tokens → their ids.
4. Cut to `max_length - 1`, append `</s>` unless it is already last, pad with the pad token.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, cast

from generation.hub import read_json
from generation.types import TokenizedPrompt

MAX_LENGTH = 77
SPIECE_FILE = "spiece.model"

# transformers 4.25's SpecialTokensMixin.SPECIAL_TOKENS_ATTRIBUTES order: it decides
# `all_special_tokens` order, which decides the lower-casing regex alternation order.
_SPECIAL_ATTRIBUTES = (
    "bos_token",
    "eos_token",
    "unk_token",
    "sep_token",
    "pad_token",
    "cls_token",
    "mask_token",
)
# T5Tokenizer's own defaults when a checkpoint's files leave one out.
_T5_DEFAULTS = {"eos_token": "</s>", "unk_token": "<unk>", "pad_token": "<pad>"}
_EXTRA_ID = re.compile(r"<extra_id_(\d+)>")


class TokenizerLoadError(ValueError):
    """The tokenizer files are missing or unreadable. The message is one line."""


@dataclass(frozen=True, slots=True)
class SpecialToken:
    """A token that is never split. `lstrip`/`rstrip` are None for plain strings (strip both)."""

    content: str
    lstrip: bool | None = None
    rstrip: bool | None = None


class _Trie:
    """Splits text on a set of tokens the way transformers 4.25's `Trie.split` does.

    Scanning left to right, partial matches are tracked by start offset. As soon as one of them
    is complete, the earliest-starting partial match that can complete wins, extended to its
    longest completion by a look-ahead; scanning resumes after it.
    """

    _END = ""

    def __init__(self, words: Iterable[str]) -> None:
        self.root: dict[str, Any] = {}
        for word in words:
            if not word:
                continue
            node = self.root
            for char in word:
                node = node.setdefault(char, {})
            node[self._END] = True

    def split(self, text: str) -> list[str]:
        """Cut `text` around every token found; the tokens themselves become their own parts."""
        cuts = [0]
        # start offset -> trie node reached so far; insertion order is start order.
        partial: dict[int, dict[str, Any]] = {}
        skip = 0
        for pos, char in enumerate(text):
            if skip and pos < skip:
                continue
            matched = False
            dead: list[int] = []
            for start, node in partial.items():
                if self._END in node:
                    begin, end = self._longest_from(text, partial, start, pos)
                    cuts += [begin, end]
                    skip = end
                    matched = True
                    break
                if char in node:
                    partial[start] = node[char]
                else:
                    dead.append(start)
            if matched:
                partial = {}
            else:
                for start in dead:
                    del partial[start]
            if pos >= skip and char in self.root:
                partial[pos] = self.root[char]
        for start, node in partial.items():
            if self._END in node:
                cuts += [start, len(text)]
                break
        return self._cut(text, cuts)

    def _longest_from(
        self, text: str, partial: dict[int, dict[str, Any]], start: int, pos: int
    ) -> tuple[int, int]:
        """The match to take when the partial match at `start` completed just before `pos`.

        Partial matches that began earlier were already advanced past `pos`; the one at
        `start` was not. The first of them (in start order) that completes wins, and among
        its completions the longest.
        """
        end = pos
        for look_start, look_node in list(partial.items()):
            if look_start > start:
                break
            index = pos + 1 if look_start < start else pos
            end = index
            node = look_node
            if self._END in node:
                start, end = look_start, index
            while index < len(text) and text[index] in node:
                node = node[text[index]]
                index += 1
                if self._END in node:
                    start, end = look_start, index
        return start, end

    @staticmethod
    def _cut(text: str, cuts: list[int]) -> list[str]:
        cuts = [*cuts, len(text)]
        parts: list[str] = []
        begin = 0
        for end in cuts:
            if begin > end:
                # A look-ahead already consumed this region; 4.25 drops such an overlap.
                continue
            if end == begin:
                continue
            parts.append(text[begin:end])
            begin = end
        return parts


class RinnaTokenizer:
    """Prompt → the 77 ids rinna's pipeline fed its text encoder (see module docstring)."""

    def __init__(
        self,
        model_file: str | Path,
        *,
        special_tokens: dict[str, SpecialToken],
        additional_special_tokens: Sequence[SpecialToken] = (),
        added_tokens: dict[str, int] | None = None,
        extra_ids: int = 0,
        max_length: int = MAX_LENGTH,
        do_lower_case: bool = True,
    ) -> None:
        import sentencepiece as spm

        if max_length < 2:
            raise ValueError("max_length must be at least 2")
        self._sp = spm.SentencePieceProcessor(model_file=str(model_file))
        self.max_length = max_length
        self.do_lower_case = do_lower_case
        self.extra_ids = extra_ids
        self.vocab_size = self._sp.get_piece_size() + extra_ids

        # all_special_tokens_extended: the named ones in attribute order, then additional, deduped.
        ordered: list[SpecialToken] = [
            special_tokens[a] for a in _SPECIAL_ATTRIBUTES if a in special_tokens
        ]
        ordered += list(additional_special_tokens)
        seen: dict[str, SpecialToken] = {}
        for tok in ordered:
            seen.setdefault(tok.content, tok)
        self._specials = seen
        self.all_special_tokens = list(seen)
        self.unk_token = special_tokens["unk_token"].content
        self.eos_token = special_tokens["eos_token"].content
        self.pad_token = special_tokens["pad_token"].content

        # 4.25's from_pretrained: added_tokens.json first (in index order), then
        # sanitize_special_tokens() adds every special token missing from the vocabulary.
        self._added: dict[str, int] = {}
        no_split: set[str] = set()
        for token, _ in sorted((added_tokens or {}).items(), key=lambda item: item[1]):
            no_split |= self._add_tokens([token], special=token in seen)
        no_split |= self._add_tokens(self.all_special_tokens, special=True)
        self.unique_no_split_tokens = sorted(no_split)
        self._trie = _Trie(self.unique_no_split_tokens)
        self._lower_pattern = re.compile(
            "("
            + "|".join(re.escape(t) for t in self.unique_no_split_tokens + self.all_special_tokens)
            + ")|(.+?)"
        )
        self.unk_id = self.token_to_id(self.unk_token)
        self.eos_id = self.token_to_id(self.eos_token)
        self.pad_id = self.token_to_id(self.pad_token)

    # -- construction --------------------------------------------------------------------

    @classmethod
    def from_folder(cls, path: str | Path, *, max_length: int = MAX_LENGTH) -> RinnaTokenizer:
        """Load from a model folder (with `tokenizer/`) or a tokenizer folder itself."""
        folder = Path(path)
        if (folder / "tokenizer" / SPIECE_FILE).is_file():
            folder = folder / "tokenizer"
        model_file = folder / SPIECE_FILE
        if not model_file.is_file():
            raise TokenizerLoadError(f"no tokenizer in {folder}: {SPIECE_FILE} is missing")
        config = read_json(folder / "tokenizer_config.json", error=TokenizerLoadError)
        special_map = read_json(folder / "special_tokens_map.json", error=TokenizerLoadError)
        added = read_json(folder / "added_tokens.json", error=TokenizerLoadError)

        # tokenizer_config.json gives the init kwargs; special_tokens_map.json overrides them.
        merged: dict[str, Any] = {**config, **special_map}
        specials: dict[str, SpecialToken] = {}
        for attribute in _SPECIAL_ATTRIBUTES:
            value = merged.get(attribute) or _T5_DEFAULTS.get(attribute)
            if value is not None:
                specials[attribute] = _special(value)
        try:
            extra_ids = int(merged.get("extra_ids", 0) or 0)
            added_ids = {str(k): int(v) for k, v in added.items()}
        except (TypeError, ValueError) as exc:
            raise TokenizerLoadError(f"bad tokenizer settings in {folder}: {exc}") from exc
        listed: list[Any] = merged.get("additional_special_tokens") or []
        additional = [_special(v) for v in listed]
        if extra_ids > 0 and not additional:
            additional = [SpecialToken(f"<extra_id_{i}>") for i in range(extra_ids)]
        try:
            return cls(
                model_file,
                special_tokens=specials,
                additional_special_tokens=additional,
                added_tokens=added_ids,
                extra_ids=extra_ids,
                max_length=max_length,
            )
        except (OSError, RuntimeError) as exc:
            raise TokenizerLoadError(f"cannot read {model_file}: {exc}") from exc

    def _add_tokens(self, tokens: Sequence[str], *, special: bool) -> set[str]:
        """4.25's `_add_tokens`: give ids to tokens the vocabulary lacks; return the no-split set."""
        to_add: list[str] = []
        # (4.25 would lower-case non-special added tokens here only if the tokenizer had
        # do_lower_case at load time; rinna's pipeline sets it afterwards, so they are not.)
        for token in tokens:
            if (
                token != self.unk_token
                and self.token_to_id(token) == self.token_to_id(self.unk_token)
                and token not in to_add
            ):
                to_add.append(token)
        size = self.vocab_size + len(self._added)
        for offset, token in enumerate(to_add):
            self._added[token] = size + offset
        return set(tokens) if special else set(to_add)

    # -- encoding ------------------------------------------------------------------------

    def tokenize(self, text: str) -> list[str]:
        """The token strings (sentencepiece pieces and special tokens) for `text`."""
        if self.do_lower_case:
            # One character at a time, as 4.25's `(.+?)` does (this is why a final Greek
            # sigma stays σ), and never inside a special token.
            text = self._lower_pattern.sub(lambda m: m.group(1) or m.group(2).lower(), text)
        parts = self._trie.split(text)
        no_split = set(self.unique_no_split_tokens)
        for i, part in enumerate(parts):
            if part not in no_split:
                continue
            special = self._specials.get(part)
            if special is None or special.lstrip is None:
                # A plain-string token: 4.25 strips both sides by default.
                strip_left = strip_right = True
            else:
                strip_left, strip_right = special.lstrip, bool(special.rstrip)
            if strip_right and i + 1 < len(parts) and parts[i + 1]:
                parts[i + 1] = parts[i + 1].lstrip()
            if strip_left and i > 0 and parts[i - 1]:
                parts[i - 1] = parts[i - 1].rstrip()
        tokens: list[str] = []
        for part in parts:
            if not part:
                continue
            if part in no_split:
                tokens.append(part)
            else:
                tokens.extend(self._sp.encode(part, out_type=str))
        return tokens

    def token_to_id(self, token: str) -> int:
        """One token string → its id (added tokens, `<extra_id_N>`, then sentencepiece)."""
        if token in self._added:
            return self._added[token]
        if token.startswith("<extra_id_"):
            match = _EXTRA_ID.match(token)
            if match:
                return self.vocab_size - int(match.group(1)) - 1
        return int(self._sp.piece_to_id(token))

    def encode(self, text: str) -> TokenizedPrompt:
        """The exact `max_length` ids rinna's pipeline gave its text encoder for `text`."""
        ids = [self.token_to_id(t) for t in self.tokenize(text)]
        # T5's build_inputs_with_special_tokens: `</s>` unless the user already ended with it.
        count = len(ids) if ids and ids[-1] == self.eos_id else len(ids) + 1
        # prepare_for_model counts one special token regardless, and cuts that many extra.
        excess = len(ids) + 1 - self.max_length
        if excess > 0:
            ids = ids[:-excess]
        if not ids or ids[-1] != self.eos_id:
            ids.append(self.eos_id)
        ids += [self.pad_id] * (self.max_length - len(ids))
        return TokenizedPrompt(ids=tuple(ids), count=count, truncated=count > self.max_length)


def _special(value: object) -> SpecialToken:
    """A special-token entry: a plain string, or a serialized `AddedToken` dict."""
    if isinstance(value, dict):
        # `isinstance` narrows only to dict[Unknown, Unknown]; JSON object keys are strings.
        entry = cast("dict[str, object]", value)
        return SpecialToken(
            str(entry.get("content", "")),
            lstrip=bool(entry.get("lstrip", False)),
            rstrip=bool(entry.get("rstrip", False)),
        )
    return SpecialToken(str(value))
