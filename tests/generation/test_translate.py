"""English prompts reach the model as the translator's Japanese: the rule, the model, the Engine.

The translator is a tiny random-weight MarianMT model with SentencePiece models trained in the
test (`tinymarian.py`): its "Japanese" is nonsense, but it is exactly what the real model's
output would be to the code under test, token for token, deterministic and input-dependent.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from huggingface_hub import constants

from generation.errors import ModelLoadError
from generation.loader import load_engine
from generation.pipeline import Engine
from generation.tokenizer import RinnaTokenizer
from generation.translate import (
    MarianTranslator,
    NullTranslator,
    describe_translator,
    has_japanese,
    load_translator,
    load_translator_or_null,
    needs_translation,
    translate_prompt,
)
from generation.types import GeneratedImage, GenerationRequest, TokenizedPrompt
from tests.generation.fakehub import FakeHub
from tests.generation.test_hub_download import hf_home, hub  # noqa: F401 (fixtures)
from tests.generation.tinymarian import build_tiny_marian

ENGLISH = "a fire dragon with blue wings"
NEGATIVE = "blurry, low quality"


class RecordingTokenizer:
    """The real tokenizer; each text it encodes is recorded."""

    def __init__(self, tokenizer: RinnaTokenizer) -> None:
        self.tokenizer = tokenizer
        self.texts: list[str] = []

    def encode(self, text: str) -> TokenizedPrompt:
        self.texts.append(text)
        return self.tokenizer.encode(text)


class RecordingTranslator:
    """The real MarianTranslator; each text it is asked to translate is recorded."""

    def __init__(self, translator: MarianTranslator) -> None:
        self.translator = translator
        self.asked: list[str] = []

    @property
    def available(self) -> bool:
        return self.translator.available

    @property
    def status(self) -> str:
        return self.translator.status

    def translate(self, text: str) -> str:
        self.asked.append(text)
        return self.translator.translate(text)


@pytest.fixture(scope="module")
def marian_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return build_tiny_marian(tmp_path_factory.mktemp("tiny-marian"))


@pytest.fixture(scope="module")
def translator(marian_folder: Path) -> MarianTranslator:
    return load_translator(marian_folder)


@pytest.fixture
def engine(tiny_engine: Engine, translator: MarianTranslator) -> Engine:
    """An Engine over the session's loaded modules, with recording tokenizer and translator."""
    return Engine(
        tiny_engine.pipe,
        RecordingTokenizer(tiny_engine.tokenizer),  # type: ignore[arg-type]
        device="cpu",
        dtype=tiny_engine.dtype,
        safety_checker=tiny_engine.safety_checker,
        model=tiny_engine.model,
        translator=RecordingTranslator(translator),
    )


def request(prompt: str, negative: str = "", *, translate: bool = True) -> GenerationRequest:
    return GenerationRequest(
        prompt=prompt,
        negative_prompt=negative,
        seed=7,
        steps=2,
        height=64,
        width=64,
        scheduler="lms",
        translate=translate,
    )


def image(result: object) -> GeneratedImage:
    assert isinstance(result, GeneratedImage), f"expected an image, got {result!r}"
    return result


# -- the rule --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "japanese"),
    [
        ("a fire dragon", False),
        ("ひらがな", True),
        ("カタカナ", True),
        ("ｶﾀｶﾅ", True),  # half-width katakana
        ("漢字", True),
        ("ドラゴン ー", True),  # the long-vowel mark is katakana
        ("dragon、blue", True),  # Japanese comma
        ("「dragon」", True),  # Japanese quotes
        ("ｆｉｒｅ", True),  # full-width letters come from a Japanese input method
        ("fire！", True),  # full-width exclamation mark
        ("fire｡", True),  # half-width ideographic full stop
        ("fire\u3000dragon", False),  # the ideographic space alone is only whitespace
        ("𠮷野家", True),  # an ideograph outside the basic plane
        ("café crème", False),
        ("огонь", False),
        ("", False),
    ],
)
def test_has_japanese_recognises_each_japanese_block(text, japanese):
    assert has_japanese(text) is japanese


@pytest.mark.parametrize(
    ("text", "translated"),
    [
        ("a fire dragon", True),
        ("Pikachu, cute, 4k", True),
        ("café crème", True),
        ("Pikachu の RPG イラスト", False),  # mixed: the user's own wording
        ("炎のドラゴン", False),
        ("1234 !!! ...", False),  # no letters at all
        ("   ", False),
        ("", False),
        ("огонь", False),  # letters, but not Latin ones: not English
    ],
)
def test_needs_translation_is_latin_letters_and_no_japanese(text, translated):
    assert needs_translation(text) is translated


# -- the model -------------------------------------------------------------------------------


def test_folder_loads_offline_and_translates_deterministically(
    marian_folder, monkeypatch: pytest.MonkeyPatch
):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    loaded = load_translator(marian_folder)
    first = loaded.translate(ENGLISH)
    again = load_translator(marian_folder).translate(ENGLISH)
    assert first == again
    assert first
    assert first != ENGLISH
    assert loaded.available is True
    assert str(marian_folder) in loaded.status


def test_different_texts_translate_differently(translator):
    assert translator.translate(ENGLISH) != translator.translate(NEGATIVE)


def test_output_is_bounded(translator):
    from generation.translate import MAX_NEW_TOKENS

    ids = translator.tokenizer(translator.translate("a cute water turtle " * 50))["input_ids"]
    assert len(ids) <= MAX_NEW_TOKENS + 1


def test_translate_prompt_leaves_japanese_and_mixed_text_to_the_user(translator):
    for text in ("炎のドラゴン", "Pikachu の RPG イラスト", "42"):
        assert translate_prompt(translator, text) == text


def test_translate_prompt_falls_back_to_the_english_when_the_model_fails(translator, caplog):
    class Failing(RecordingTranslator):
        def translate(self, text: str) -> str:
            raise RuntimeError("the model broke\nsecond line")

    assert translate_prompt(Failing(translator), ENGLISH) == ENGLISH
    assert "translation failed; using the English text (the model broke)" in caplog.text


# -- the Engine ------------------------------------------------------------------------------


def test_english_prompt_reaches_the_tokenizer_as_the_translators_output(engine, translator):
    expected = translator.translate(ENGLISH)
    result = image(engine.generate([request(ENGLISH)])[0])
    assert engine.tokenizer.texts == [expected, ""]
    assert engine.translator.asked == [ENGLISH]
    assert result.prompt_used == expected
    assert result.negative_used == ""
    assert result.token_count == engine.tokenizer.tokenizer.encode(expected).count
    assert "translate" in result.timings


def test_negative_prompt_is_translated_on_its_own(engine, translator):
    result = image(engine.generate([request(ENGLISH, NEGATIVE)])[0])
    assert engine.translator.asked == [ENGLISH, NEGATIVE]
    assert engine.tokenizer.texts == [translator.translate(ENGLISH), translator.translate(NEGATIVE)]
    assert result.negative_used == translator.translate(NEGATIVE)


def test_japanese_negative_is_untouched_while_the_english_prompt_is_translated(engine, translator):
    result = image(engine.generate([request(ENGLISH, "ぼやけた 画像")])[0])
    assert engine.tokenizer.texts == [translator.translate(ENGLISH), "ぼやけた 画像"]
    assert engine.translator.asked == [ENGLISH]
    assert (result.prompt_used, result.negative_used) == (
        translator.translate(ENGLISH),
        "ぼやけた 画像",
    )


@pytest.mark.parametrize("prompt", ["炎のドラゴン", "Pikachu の RPG イラスト"])
def test_japanese_or_mixed_prompt_is_untouched(engine, prompt):
    result = image(engine.generate([request(prompt)])[0])
    assert engine.tokenizer.texts == [prompt, ""]
    assert engine.translator.asked == []
    assert result.prompt_used == prompt


def test_translate_off_passes_english_through(engine):
    result = image(engine.generate([request(ENGLISH, NEGATIVE, translate=False)])[0])
    assert engine.tokenizer.texts == [ENGLISH, NEGATIVE]
    assert engine.translator.asked == []
    assert (result.prompt_used, result.negative_used) == (ENGLISH, NEGATIVE)
    assert "translate" not in result.timings


def test_translated_request_equals_the_stored_japanese_run_untranslated(engine, translator):
    """What 🔁 relies on: re-running the stored Japanese gives the same picture."""
    translated = image(engine.generate([request(ENGLISH, NEGATIVE)])[0])
    rerun = image(
        engine.generate(
            [request(translated.prompt_used, translated.negative_used, translate=False)]
        )[0]
    )
    assert rerun.png == translated.png


def test_batch_members_are_translated_each_on_its_own(engine, translator):
    results = engine.generate([request(ENGLISH), request("炎のドラゴン"), request(NEGATIVE)])
    used = [image(r).prompt_used for r in results]
    assert used == [translator.translate(ENGLISH), "炎のドラゴン", translator.translate(NEGATIVE)]


def test_load_engine_takes_the_translator(tiny_model, translator):
    loaded = load_engine(tiny_model, device="cpu", safety_checker=False, translator=translator)
    assert loaded.translator is translator
    result = image(loaded.generate([request(ENGLISH)])[0])
    assert result.prompt_used == translator.translate(ENGLISH)


def test_engine_without_a_translator_passes_english_through(tiny_engine):
    assert isinstance(tiny_engine.translator, NullTranslator)
    result = image(tiny_engine.generate([request(ENGLISH)])[0])
    assert result.prompt_used == ENGLISH


# -- failures --------------------------------------------------------------------------------


def broken_folders(good: Path, root: Path) -> dict[str, Path]:
    def copy(name: str) -> Path:
        return Path(shutil.copytree(good, root / name))

    no_spm = copy("no-spm")
    (no_spm / "source.spm").unlink()
    bad_config = copy("bad-config")
    (bad_config / "config.json").write_text("{not json", "utf-8")
    bad_weights = copy("bad-weights")
    (bad_weights / "model.safetensors").write_bytes(b"\x00" * 64)
    no_weights = copy("no-weights")
    (no_weights / "model.safetensors").unlink()
    bad_spm = copy("bad-spm")
    (bad_spm / "target.spm").write_bytes(b"not a sentencepiece model")
    a_file = root / "a-file"
    a_file.write_text("x", "utf-8")
    return {
        "missing": root / "does-not-exist",
        "no-spm": no_spm,
        "bad-config": bad_config,
        "bad-weights": bad_weights,
        "no-weights": no_weights,
        "bad-spm": bad_spm,
        "a-file": a_file,
    }


@pytest.mark.parametrize(
    ("case", "says"),
    [
        ("missing", "does not exist"),
        ("no-spm", "missing source.spm"),
        ("bad-config", "cannot load the translation"),
        ("bad-weights", "cannot load the translation model"),
        ("no-weights", "no model weights"),
        ("bad-spm", "cannot load the translation tokenizer"),
        ("a-file", "is a file"),
    ],
)
def test_broken_model_folder_is_one_clear_line(marian_folder, tmp_path, case, says):
    folder = broken_folders(marian_folder, tmp_path)[case]
    with pytest.raises(ModelLoadError) as caught:
        load_translator(folder)
    message = str(caught.value)
    assert says in message
    assert "\n" not in message


def test_broken_model_leaves_generation_working_untranslated(
    tiny_engine, marian_folder, tmp_path, caplog
):
    folder = broken_folders(marian_folder, tmp_path)["bad-weights"]
    null = load_translator_or_null(folder)
    assert null.available is False
    assert null.status.startswith("English prompts are passed through untranslated: ")
    assert str(folder) in null.status
    assert null.status in caplog.text
    engine = Engine(
        tiny_engine.pipe,
        tiny_engine.tokenizer,
        device="cpu",
        dtype=tiny_engine.dtype,
        safety_checker=False,
        model=tiny_engine.model,
        translator=null,
    )
    result = image(engine.generate([request(ENGLISH, NEGATIVE)])[0])
    assert (result.prompt_used, result.negative_used) == (ENGLISH, NEGATIVE)


def test_describe_translator_is_one_line_with_a_probe_translation(marian_folder, translator):
    line = describe_translator(marian_folder)
    assert line.startswith(f"{marian_folder} on cpu: 'a fire dragon' -> ")
    assert repr(translator.translate("a fire dragon")) in line
    assert "\n" not in line


def test_describe_translator_raises_the_load_error(tmp_path):
    with pytest.raises(ModelLoadError, match="does not exist"):
        describe_translator(tmp_path / "none")


def test_unknown_device_is_one_line(marian_folder):
    with pytest.raises(ModelLoadError, match="unknown translation device 'gpu'"):
        load_translator(marian_folder, device="gpu")


def test_hub_id_not_cached_offline_is_one_line(hf_home, monkeypatch: pytest.MonkeyPatch):  # noqa: F811
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    with pytest.raises(ModelLoadError) as caught:
        load_translator("someone/tiny-marian")
    message = str(caught.value)
    assert "not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE is set" in message
    assert "\n" not in message


def test_hub_id_downloads_only_what_it_needs_then_loads_offline_from_the_cache(
    hub: FakeHub,  # noqa: F811
    marian_folder,
    tmp_path,
    monkeypatch: pytest.MonkeyPatch,
):
    served = Path(shutil.copytree(marian_folder, tmp_path / "served"))
    (served / "pytorch_model.bin").write_bytes(b"a second copy of the weights: never fetched")
    hub.add_repo("someone/tiny-marian", served)
    online = load_translator("someone/tiny-marian")
    assert online.translate(ENGLISH) == load_translator(marian_folder).translate(ENGLISH)
    fetched = set(hub.downloaded("someone/tiny-marian"))
    assert "model.safetensors" in fetched
    assert "pytorch_model.bin" not in fetched
    assert {"config.json", "source.spm", "target.spm", "vocab.json"} <= fetched

    hub.close()
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    offline = load_translator("someone/tiny-marian")
    assert offline.translate(ENGLISH) == online.translate(ENGLISH)


def test_unknown_hub_id_is_one_line(hub: FakeHub):  # noqa: F811
    with pytest.raises(ModelLoadError) as caught:
        load_translator("someone/no-such-model")
    message = str(caught.value)
    assert "unknown Hub model id someone/no-such-model" in message
    assert "\n" not in message
