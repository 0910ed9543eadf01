"""resolve_model / load_engine: the published layout, its variants, and one clear line per failure."""

from __future__ import annotations

import io
import json
import shutil
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import torch
from huggingface_hub import constants
from PIL import Image

from generation.errors import ModelLoadError
from generation.loader import (
    _wanted_files,
    describe_device,
    load_engine,
    load_tokenizer,
    resolve_model,
)
from generation.types import GenerationRequest

REFERENCE = Path(__file__).resolve().parents[1] / "reference"
CASE1 = json.loads((REFERENCE / "images" / "cases.json").read_text("utf-8"))[1]


def copy_model(tiny_model: Path, tmp_path: Path) -> Path:
    folder = tmp_path / "model"
    shutil.copytree(tiny_model, folder)
    return folder


def edit_json(path: Path, **changes: object) -> None:
    data = json.loads(path.read_text("utf-8"))
    data.update(changes)
    path.write_text(json.dumps(data), "utf-8")


def case1_pixels(engine) -> np.ndarray:
    request = GenerationRequest(
        prompt=CASE1["prompt"],
        negative_prompt=CASE1["negative_prompt"],
        seed=CASE1["seed"],
        steps=CASE1["steps"],
        guidance=CASE1["guidance"],
        height=CASE1["height"],
        width=CASE1["width"],
        scheduler="lms",
    )
    result = engine.generate([request])[0]
    return np.asarray(Image.open(io.BytesIO(result.png)), dtype=np.float64)


def reference_pixels() -> np.ndarray:
    return np.load(REFERENCE / "images" / "case1.npy").astype(np.float64) * 255


def load_error(source: object, **options: object) -> str:
    with pytest.raises(ModelLoadError) as info:
        load_engine(source, **options)  # type: ignore[arg-type]
    message = str(info.value)
    assert "\n" not in message, "a load error must be one line"
    return message


# -- the published layout -------------------------------------------------------------------


def test_published_layout_loads_every_component_on_cpu_in_float32(tiny_engine):
    from transformers import CLIPTextModel

    assert tiny_engine.device == "cpu"
    assert tiny_engine.dtype == "float32"
    assert tiny_engine.safety_checker is True
    pipe = tiny_engine.pipe
    assert isinstance(pipe.text_encoder, CLIPTextModel)
    assert pipe.unet.dtype == torch.float32
    assert pipe.safety_checker is not None
    assert type(pipe.feature_extractor).__name__.startswith("CLIPImageProcessor")
    assert tiny_engine.tokenizer.max_length == 77


def test_unet_and_vae_attention_uses_sdpa(tiny_engine):
    from diffusers.models.attention_processor import AttnProcessor2_0

    processors = {
        **tiny_engine.pipe.unet.attn_processors,
        **tiny_engine.pipe.vae.attn_processors,
    }
    assert processors
    assert all(isinstance(p, AttnProcessor2_0) for p in processors.values())


def test_published_tokenizer_config_has_no_model_max_length_and_engine_still_uses_77(
    tiny_model, tiny_engine
):
    config = json.loads((tiny_model / "tokenizer" / "tokenizer_config.json").read_text("utf-8"))
    assert "model_max_length" not in config
    assert len(tiny_engine.tokenize("漫画の鳥").ids) == 77


def test_small_unet_sample_size_does_not_decide_the_image_size(tiny_model, tiny_engine):
    config = json.loads((tiny_model / "unet" / "config.json").read_text("utf-8"))
    assert config["sample_size"] * 8 != 80
    request = GenerationRequest(prompt="漫画の鳥", steps=1, height=64, width=80, scheduler="lms")
    result = tiny_engine.generate([request])[0]
    assert Image.open(io.BytesIO(result.png)).size == (80, 64)


# -- variants built from it -----------------------------------------------------------------


def test_japanese_pipeline_class_name_loads_the_same_model(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path)
    edit_json(folder / "model_index.json", _class_name="JapaneseStableDiffusionPipeline")
    engine = load_engine(folder, device="cpu")
    assert np.abs(case1_pixels(engine) - reference_pixels()).max() <= 2


def test_safetensors_weights_load_and_give_the_reference_image(tiny_model, tmp_path):
    from safetensors.torch import save_file

    folder = copy_model(tiny_model, tmp_path)
    names = {
        "unet": "diffusion_pytorch_model",
        "vae": "diffusion_pytorch_model",
        "text_encoder": "model",
        "safety_checker": "model",
    }
    for component, stem in names.items():
        weights = (
            folder
            / component
            / ("diffusion_pytorch_model.bin" if stem.startswith("d") else "pytorch_model.bin")
        )
        state = torch.load(weights, map_location="cpu", weights_only=True)
        save_file(
            {k: v.contiguous() for k, v in state.items()},
            folder / component / f"{stem}.safetensors",
        )
        weights.unlink()
    engine = load_engine(folder, device="cpu")
    assert np.abs(case1_pixels(engine) - reference_pixels()).max() <= 2


def test_checkpoint_without_safety_checker_loads_with_checking_off(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path)
    shutil.rmtree(folder / "safety_checker")
    shutil.rmtree(folder / "feature_extractor")
    edit_json(
        folder / "model_index.json", safety_checker=[None, None], feature_extractor=[None, None]
    )
    engine = load_engine(folder, device="cpu", safety_checker=True)
    assert engine.safety_checker is False
    assert engine.pipe.safety_checker is None
    assert np.abs(case1_pixels(engine) - reference_pixels()).max() <= 2


def test_safety_checker_disabled_by_setting_is_not_loaded(tiny_model):
    engine = load_engine(tiny_model, device="cpu", safety_checker=False)
    assert engine.safety_checker is False
    assert engine.pipe.safety_checker is None


def test_huge_model_max_length_in_tokenizer_config_is_ignored(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path)
    edit_json(folder / "tokenizer" / "tokenizer_config.json", model_max_length=int(1e30))
    assert (
        load_tokenizer(folder).encode("漫画の鳥").ids
        == load_tokenizer(tiny_model).encode("漫画の鳥").ids
    )


def test_model_in_the_hub_cache_loads_offline_by_its_id(tiny_model, tmp_path, monkeypatch):
    cache = tmp_path / "hub"
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = cache / "models--someone--tiny-pokemon-ja"
    shutil.copytree(tiny_model, repo / "snapshots" / commit)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert resolve_model("someone/tiny-pokemon-ja") == (repo / "snapshots" / commit).resolve()
    assert load_tokenizer("someone/tiny-pokemon-ja").encode("漫画の鳥").count == 4


def test_download_list_takes_configs_and_one_weight_format_per_component():
    files = [
        "model_index.json",
        "README.md",
        "model.ckpt",
        "unet/config.json",
        "unet/diffusion_pytorch_model.bin",
        "unet/diffusion_pytorch_model.safetensors",
        "unet/diffusion_pytorch_model.fp16.safetensors",
        "text_encoder/config.json",
        "text_encoder/pytorch_model.bin",
        "tokenizer/spiece.model",
        "tokenizer/tokenizer_config.json",
        "scheduler/scheduler_config.json",
    ]
    assert sorted(_wanted_files(files)) == sorted(
        [
            "model_index.json",
            "unet/config.json",
            "unet/diffusion_pytorch_model.safetensors",
            "text_encoder/config.json",
            "text_encoder/pytorch_model.bin",
            "tokenizer/spiece.model",
            "tokenizer/tokenizer_config.json",
            "scheduler/scheduler_config.json",
        ]
    )


# -- every failure is one line -----------------------------------------------------------------


def test_missing_folder_is_one_line_naming_it(tmp_path):
    message = load_error(tmp_path / "nowhere")
    assert "nowhere" in message
    assert "does not exist" in message


def test_empty_folder_is_not_a_model(tmp_path):
    assert "not a diffusers model folder" in load_error(tmp_path)


def test_folder_missing_unet_names_the_component(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path)
    shutil.rmtree(folder / "unet")
    assert "missing the unet/ component" in load_error(folder)


def test_other_pipeline_class_is_refused(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path)
    edit_json(folder / "model_index.json", _class_name="StableDiffusionXLPipeline")
    assert "StableDiffusionXLPipeline" in load_error(folder)


def test_text_encoder_that_is_not_clip_is_refused_by_name(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path)
    edit_json(
        folder / "text_encoder" / "config.json", model_type="t5", architectures=["T5EncoderModel"]
    )
    message = load_error(folder)
    assert "text_encoder" in message
    assert "CLIP" in message


def test_corrupt_weights_are_one_line_naming_the_component(tiny_model, tmp_path):
    folder = copy_model(tiny_model, tmp_path)
    (folder / "vae" / "diffusion_pytorch_model.bin").write_bytes(b"not a checkpoint")
    assert load_error(folder, device="cpu").startswith("cannot load vae from")


def test_hub_id_not_cached_while_offline_says_so(tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    message = load_error("someone/not-downloaded")
    assert "not in the Hugging Face cache" in message
    assert "HF_HUB_OFFLINE" in message


def test_bogus_id_is_neither_a_folder_nor_a_hub_id(monkeypatch):
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    assert "does not exist" in load_error("not a model id!")


class _NoSuchRepo(BaseHTTPRequestHandler):
    """The Hub's answer for an unknown repository."""

    def do_GET(self) -> None:
        body = b'{"error":"Repository not found"}'
        self.send_response(404)
        self.send_header("X-Error-Code", "RepoNotFound")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        return None


@pytest.fixture
def fake_hub() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), _NoSuchRepo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()


def test_unknown_hub_id_is_one_line_from_the_hub_answer(fake_hub, tmp_path, monkeypatch):
    monkeypatch.setattr(constants, "ENDPOINT", fake_hub)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(tmp_path))
    assert "unknown Hub model id someone/nothing-here" in load_error("someone/nothing-here")


def test_unknown_device_is_one_line(tiny_model):
    assert "unknown device" in load_error(tiny_model, device="tpu")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_cuda_without_cuda_is_one_line(tiny_model):
    assert "CUDA is not available" in load_error(tiny_model, device="cuda")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_loads_fp16_weights_channels_last_and_matches_reference_loosely(tiny_model):
    engine = load_engine(tiny_model, device="cuda")
    assert engine.dtype == "float16"
    assert engine.pipe.unet.dtype == torch.float16
    weight = engine.pipe.unet.conv_in.weight
    assert weight.is_contiguous(memory_format=torch.channels_last)
    # fp16 on a GPU is not bit-exact with the float32 CPU reference; a loose bound catches
    # a wrong seed, tokenizer or scheduler.
    assert np.abs(case1_pixels(engine) - reference_pixels()).mean() <= 8


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_compile_wraps_the_unet_and_still_makes_images(tiny_model):
    engine = load_engine(tiny_model, device="cuda", compile=True)
    from generation.fastpath import FastPath

    assert engine.compiled is True
    path = engine.path
    assert isinstance(path, FastPath)
    assert path.active, path.failed
    assert type(path.unet).__name__ == "OptimizedModule"
    # Warmed for one 512² picture only: a 64² picture runs on the eager UNet, no compile.
    assert case1_pixels(engine).shape == (64, 64, 3)
    assert engine.pipe.unet is path.eager_unet


def test_describe_device_names_cpu_and_its_precision() -> None:
    line = describe_device("cpu")
    assert line.startswith("cpu (float32)")


@pytest.mark.skipif(torch.cuda.is_available(), reason="needs a machine without CUDA")
def test_describe_device_refuses_cuda_without_cuda_in_one_line() -> None:
    with pytest.raises(ModelLoadError, match="CUDA is not available") as info:
        describe_device("cuda")
    assert "\n" not in str(info.value)


def test_describe_device_refuses_an_unknown_device() -> None:
    with pytest.raises(ModelLoadError, match="unknown device"):
        describe_device("tpu")


def test_dtype_override_sets_the_weights_precision(tiny_model: Path) -> None:
    engine = load_engine(tiny_model, device="cpu", safety_checker=False, dtype="bfloat16")
    assert engine.dtype == "bfloat16"
    assert engine.pipe.unet.dtype == torch.bfloat16


def test_unknown_dtype_is_one_clear_line(tiny_model: Path) -> None:
    with pytest.raises(ModelLoadError, match="unknown dtype 'float8'"):
        load_engine(tiny_model, device="cpu", dtype="float8")
