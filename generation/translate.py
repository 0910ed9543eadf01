"""English prompts in, Japanese prompts out: the model was trained on Japanese captions only.

The rule for what is translated is `needs_translation`: text with at least one Latin letter and
no Japanese character. A prompt with any Japanese in it (mixed ones too) is the user's own
wording and is left alone, as is a prompt of digits and punctuation only. "Japanese" is every
character of these blocks:

- hiragana (U+3040-309F) and katakana (U+30A0-30FF, U+31F0-31FF, half-width U+FF66-FF9F);
- CJK ideographs (U+3400-4DBF, U+4E00-9FFF, U+F900-FAFF, U+20000-3134F): kanji, which a
  Chinese prompt shares and which is left alone as well;
- Japanese punctuation and marks (U+3001-303F: 、。「」々〆, half-width U+FF61-FF65: ｡｢｣､･),
  and full-width forms (U+FF01-FF60: ！，（）ＡＢＣ), which only a Japanese input method types.

The ideographic space U+3000 does not count: it is whitespace, not wording.

The translator is an English→Japanese MarianMT model (default `staka/fugumt-en-ja`, CC BY-SA 4.0)
loaded through transformers from a Hub id or a local folder, on the CPU by default. It decodes
with a fixed beam search (no sampling), so the same text always gives the same translation (and
so the same seed gives the same picture). When it cannot load, `NullTranslator` stands in: English
prompts are passed through untranslated and `status` says why.
"""

from __future__ import annotations

import logging
import re
import threading
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Protocol

from generation.errors import ModelLoadError, one_line
from generation.hub import hub_error, quiet_libraries, resolve

log = logging.getLogger(__name__)

DEFAULT_TRANSLATE_MODEL = "staka/fugumt-en-ja"
MAX_SOURCE_TOKENS = 128  # longer input is cut: the text encoder sees only 77 tokens anyway
MAX_NEW_TOKENS = 96  # a bound on the output, and so on the time one translation takes
NUM_BEAMS = 4  # fixed, whatever the checkpoint's generation_config.json says
_CACHE_SIZE = 256  # translations kept: a re-rolled or popular prompt is not translated twice
# Files of a MarianMT folder the translator needs (weights are chosen separately).
_NEEDED = ("config.json", "source.spm", "target.spm", "vocab.json")

_JAPANESE = re.compile(
    "["
    "\u3001-\u303f"  # Japanese punctuation and marks (not U+3000, the ideographic space)
    "\u3040-\u309f"  # hiragana
    "\u30a0-\u30ff"  # katakana
    "\u31f0-\u31ff"  # katakana phonetic extensions
    "\u3400-\u4dbf"  # CJK extension A
    "\u4e00-\u9fff"  # CJK unified ideographs
    "\uf900-\ufaff"  # CJK compatibility ideographs
    "\uff01-\uff9f"  # full-width forms, half-width Japanese punctuation and katakana
    "\U00020000-\U0003134f"  # CJK extensions B-G
    "]"
)
# A Latin letter: ASCII, Latin-1 and Latin Extended-A/B (é, ß, ł ...).
_LATIN = re.compile("[A-Za-z\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u024f]")


def has_japanese(text: str) -> bool:
    """Whether `text` has any Japanese character (see the module docstring for the blocks)."""
    return _JAPANESE.search(text) is not None


def needs_translation(text: str) -> bool:
    """Whether `text` is translated: it has a Latin letter and no Japanese character."""
    return _LATIN.search(text) is not None and not has_japanese(text)


class Translator(Protocol):
    """What the Engine needs: `translate` is called from the generation worker thread only."""

    @property
    def available(self) -> bool: ...

    @property
    def status(self) -> str: ...

    def translate(self, text: str) -> str: ...


def translate_prompt(translator: Translator, text: str) -> str:
    """`text` translated when `needs_translation(text)`, else unchanged.

    A translation that fails or comes out empty leaves the text as it was (and is logged): a
    picture from the English prompt is better than no picture.
    """
    if not needs_translation(text) or not translator.available:
        return text
    try:
        translated = translator.translate(text).strip()
    except Exception as exc:
        log.warning("translation failed; using the English text (%s)", one_line(exc))
        return text
    if not translated:
        log.warning("translation came out empty; using the English text")
        return text
    return translated


class NullTranslator:
    """Stands in when translation is off or its model could not load: text passes through."""

    def __init__(self, reason: str = "translation is off") -> None:
        self.reason = reason

    @property
    def available(self) -> bool:
        return False

    @property
    def status(self) -> str:
        return f"English prompts are passed through untranslated: {self.reason}"

    def translate(self, text: str) -> str:
        return text


class MarianTranslator:
    """A loaded MarianMT model and its tokenizer. Built by `load_translator`."""

    def __init__(self, model: Any, tokenizer: Any, *, source: str, device: str) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.source = source
        self.device = device
        self._lock = threading.Lock()  # generate() is not safe to call from two threads
        self._cache: OrderedDict[str, str] = OrderedDict()

    @property
    def available(self) -> bool:
        return True

    @property
    def status(self) -> str:
        return f"English prompts are translated to Japanese by {self.source} on {self.device}"

    def translate(self, text: str) -> str:
        """The Japanese for `text`: a fixed beam search, no sampling, so always the same output."""
        import torch

        with self._lock:
            cached = self._cache.get(text)
            if cached is not None:
                self._cache.move_to_end(text)
                return cached
            batch = self.tokenizer(
                [text], return_tensors="pt", truncation=True, max_length=MAX_SOURCE_TOKENS
            ).to(self.device)
            with torch.no_grad():
                output = self.model.generate(
                    **batch,
                    do_sample=False,
                    num_beams=NUM_BEAMS,
                    max_new_tokens=MAX_NEW_TOKENS,
                )
            # The output is Japanese: decode it with the target sentencepiece model
            # (transformers 5 picks the source one for a shared vocabulary unless told).
            translated = str(
                self.tokenizer.decode(
                    output[0], skip_special_tokens=True, use_source_tokenizer=False
                )
            ).strip()
            self._cache[text] = translated
            while len(self._cache) > _CACHE_SIZE:
                self._cache.popitem(last=False)
            return translated


def load_translator(source: str | Path, *, device: str = "cpu") -> MarianTranslator:
    """Load the MarianMT model at `source` (folder or Hub id; the cache when offline).

    Every failure is a `ModelLoadError` with one line an operator can act on.
    """
    choice = device.strip().lower()
    if not re.fullmatch(r"cpu|cuda(:\d+)?", choice):
        raise ModelLoadError(f"unknown translation device {device!r}: use cpu, cuda or cuda:N")
    folder = resolve_translator(source)
    started = time.monotonic()
    import torch

    if choice.startswith("cuda") and not torch.cuda.is_available():
        raise ModelLoadError(f"translation device {choice} was asked for but CUDA is not available")
    # Quiet also hides "Recommended: pip install sacremoses" (an optional punctuation normaliser).
    with quiet_libraries():
        from transformers import MarianMTModel, MarianTokenizer

        try:
            tokenizer = MarianTokenizer.from_pretrained(folder)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load the translation tokenizer from {folder}: {one_line(exc)}"
            ) from exc
        safetensors = any(folder.glob("*.safetensors"))
        try:
            # Typed as Any: transformers' stubs type `.to` as the nn.Module descriptor.
            model: Any = MarianMTModel.from_pretrained(folder, use_safetensors=safetensors)
            model.to(choice)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot load the translation model from {folder}: {one_line(exc)}"
            ) from exc
    model.eval()
    log.info(
        "translation model %s loaded on %s in %.1fs", source, choice, time.monotonic() - started
    )
    return MarianTranslator(model, tokenizer, source=str(source), device=choice)


def load_translator_or_null(source: str | Path, *, device: str = "cpu") -> Translator:
    """`load_translator`, or a `NullTranslator` saying why (logged as one warning line)."""
    try:
        return load_translator(source, device=device)
    except ModelLoadError as exc:
        null = NullTranslator(f"the translation model did not load ({exc})")
        log.warning("%s", null.status)
        return null


class TranslatorNotCachedError(ModelLoadError):
    """A Hub id not in the local cache, when downloading was not allowed (`download=False`)."""


def describe_translator(source: str | Path, *, device: str = "cpu") -> str:
    """One line for `pokemon-bot doctor`: the model loads and translates a probe phrase.

    Never downloads: a Hub id is looked for in the cache only, and one that is not there raises
    `TranslatorNotCachedError` (the caller may ask the Hub whether the first start can get it).
    Raises `ModelLoadError` when it cannot load (the bot would then pass English through).
    """
    folder = resolve_translator(source, download=False)
    translator = load_translator(folder, device=device)
    started = time.monotonic()
    probe = "a fire dragon"
    translated = translator.translate(probe)
    where = str(source)
    if not Path(where.strip()).expanduser().exists():
        from huggingface_hub import constants

        where = f"{where.strip()} (cached in {constants.HF_HUB_CACHE})"
    return (
        f"{where} on {translator.device}: {probe!r} -> {translated!r} "
        f"({time.monotonic() - started:.2f}s)"
    )


def resolve_translator(source: str | Path, *, download: bool = True) -> Path:
    """A local MarianMT folder, or a Hub id downloaded (or found in the cache) → the folder.

    With `download=False` a Hub id is looked for in the cache only, without asking the Hub;
    not finding it raises `TranslatorNotCachedError`.
    """
    return resolve(
        source,
        what="translation model",
        setting="POKEMON_TRANSLATE_MODEL",
        check_folder=_check_folder,
        from_hub=lambda repo_id: _check_folder(_from_hub(repo_id, download=download)),
    )


def _check_folder(path: Path) -> Path:
    if not path.is_dir():
        raise ModelLoadError(f"{path} is a file, not a translation model folder")
    missing = [name for name in _NEEDED if not (path / name).is_file()]
    if missing:
        raise ModelLoadError(
            f"{path} is not a MarianMT translation model folder (missing {', '.join(missing)})"
        )
    if not any(path.glob("*.safetensors")) and not any(path.glob("*.bin")):
        raise ModelLoadError(f"{path} has no model weights (*.safetensors or *.bin)")
    return path.resolve()


def _from_hub(repo_id: str, *, download: bool = True) -> Path:
    """The Hub files the translator needs: configs, sentencepiece models, one weight format.

    `snapshot_download` itself falls back to the cache when offline or when the Hub cannot be
    reached; safetensors weights are taken when the repository has them, else the .bin ones.
    With `download=False` only the cache is read (`TranslatorNotCachedError` when it lacks them).
    """
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    def fetch(patterns: list[str]) -> Path:
        try:
            return Path(
                snapshot_download(repo_id, allow_patterns=patterns, local_files_only=not download)
            )
        except LocalEntryNotFoundError as exc:
            if not download:
                raise TranslatorNotCachedError(
                    f"translation model {repo_id} is not in the Hugging Face cache "
                    f"({constants.HF_HUB_CACHE})"
                ) from exc
            where = (
                "HF_HUB_OFFLINE is set" if constants.HF_HUB_OFFLINE else "the Hub is unreachable"
            )
            raise ModelLoadError(
                f"translation model {repo_id} is not in the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}) and {where}; download it once online or point "
                "POKEMON_TRANSLATE_MODEL at a local folder"
            ) from exc
        except Exception as exc:  # network and disk errors come from several libraries
            raise ModelLoadError(
                f"cannot get translation model {repo_id} from the Hugging Face Hub: "
                f"{hub_error(repo_id, exc)}"
            ) from exc

    folder = fetch(["*.json", "*.spm", "model.safetensors"])
    if not (folder / "model.safetensors").is_file():
        folder = fetch(["*.json", "*.spm", "pytorch_model.bin"])
    return folder
