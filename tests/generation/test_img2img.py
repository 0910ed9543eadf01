"""Image-to-image in the Engine, on CPU with the tiny checkpoint, against diffusers' own pipeline."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from generation.images import BadInputImageError, InputImageTypeError
from generation.pipeline import Engine
from generation.schedulers import MODEL_CARD_BETAS
from generation.types import GeneratedImage, GenerationRequest
from tests.generation.test_pipeline import CASES, REFERENCE, TOLERANCE, count_calls, pixels

PROMPT = "鉢植えの植物を頭に載せた漫画のキャラクター"
NEGATIVE = "ぼやけた 画像"


def png_bytes(image: Image.Image, fmt: str = "PNG") -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


@pytest.fixture(scope="module")
def source() -> Image.Image:
    """A 64x64 picture with structure: the first reference image, with a colour gradient."""
    base = np.asarray(Image.open(REFERENCE / "images" / CASES[0]["file"]).convert("RGB"))
    ramp = np.linspace(0, 120, 64, dtype=np.float64)[None, :, None]
    return Image.fromarray(np.clip(base * 0.5 + ramp, 0, 255).astype(np.uint8), "RGB")


def vary(source_png: bytes, **changes: object) -> GenerationRequest:
    options: dict[str, object] = {
        "prompt": PROMPT,
        "negative_prompt": NEGATIVE,
        "seed": 5,
        "steps": 6,
        "guidance": 7.5,
        "height": 64,
        "width": 64,
        "scheduler": "lms",
        "init_image": source_png,
        "strength": 0.5,
    }
    options.update(changes)
    return GenerationRequest(**options)  # type: ignore[arg-type]


def diffusers_img2img(
    engine: Engine, request: GenerationRequest, image: Image.Image, scheduler: object
) -> np.ndarray:
    """diffusers' StableDiffusionImg2ImgPipeline, stock scheduler, the same embeddings and seed."""
    from diffusers import StableDiffusionImg2ImgPipeline

    pipe = StableDiffusionImg2ImgPipeline(
        vae=engine.pipe.vae,
        text_encoder=engine.pipe.text_encoder,
        tokenizer=None,
        unet=engine.pipe.unet,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    ids = [engine.tokenize(request.prompt).ids, engine.tokenize(request.negative_prompt).ids]
    with torch.no_grad():
        embeds = engine.pipe.text_encoder(torch.tensor(ids))[0]
    output = pipe(
        prompt_embeds=embeds[:1],
        negative_prompt_embeds=embeds[1:],
        image=image,
        strength=request.strength,
        num_inference_steps=request.steps,
        guidance_scale=request.guidance,
        generator=torch.Generator("cpu").manual_seed(request.seed),
        output_type="np",
    ).images[0]
    return (output * 255).round()


def stock_scheduler(name: str) -> object:
    from diffusers import DPMSolverMultistepScheduler, LMSDiscreteScheduler

    if name == "lms":
        return LMSDiscreteScheduler(**MODEL_CARD_BETAS)
    return DPMSolverMultistepScheduler(
        **MODEL_CARD_BETAS, algorithm_type="dpmsolver++", solver_order=2, use_karras_sigmas=True
    )


# -- the reference ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("scheduler", "strength", "steps"), [("lms", 0.5, 6), ("lms", 0.8, 4), ("dpmpp-2m", 0.65, 5)]
)
def test_matches_diffusers_img2img_pipeline_within_2_of_255(
    tiny_engine, source, scheduler, strength, steps
):
    request = vary(png_bytes(source), scheduler=scheduler, strength=strength, steps=steps)
    ours = pixels(tiny_engine.generate([request])[0])
    theirs = diffusers_img2img(tiny_engine, request, source, stock_scheduler(scheduler))
    assert ours.shape == theirs.shape == (64, 64, 3)
    assert np.abs(ours - theirs).max() <= TOLERANCE


def test_same_seed_gives_the_same_picture_and_another_seed_another(tiny_engine, source):
    data = png_bytes(source)
    first = pixels(tiny_engine.generate([vary(data)])[0])
    again = pixels(tiny_engine.generate([vary(data)])[0])
    other = pixels(tiny_engine.generate([vary(data, seed=6)])[0])
    assert np.array_equal(first, again)
    assert np.abs(first - other).max() > 10


def test_strength_changes_the_picture_and_more_strength_moves_further(tiny_engine, source):
    data = png_bytes(source)
    original = np.asarray(source, dtype=np.float64)
    subtle = pixels(tiny_engine.generate([vary(data, strength=0.35, steps=10)])[0])
    strong = pixels(tiny_engine.generate([vary(data, strength=0.65, steps=10)])[0])
    assert np.abs(subtle - strong).max() > 10
    assert np.abs(subtle - original).mean() < np.abs(strong - original).mean()


def test_the_source_picture_shapes_the_result(tiny_engine, source):
    flipped = source.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    one = pixels(tiny_engine.generate([vary(png_bytes(source))])[0])
    two = pixels(tiny_engine.generate([vary(png_bytes(flipped))])[0])
    assert np.abs(one - two).max() > 10


def test_source_of_another_size_and_type_is_resized_to_the_request(tiny_engine, source):
    big = source.resize((100, 80))
    result = tiny_engine.generate([vary(png_bytes(big, "WEBP"), height=48, width=64)])[0]
    assert isinstance(result, GeneratedImage)
    assert (result.width, result.height) == (64, 48)
    assert pixels(result).shape == (48, 64, 3)


def test_result_reports_the_request_and_texts(tiny_engine, source):
    result = tiny_engine.generate([vary(png_bytes(source))])[0]
    assert isinstance(result, GeneratedImage)
    assert (result.seed, result.steps) == (5, 6)
    assert (result.prompt_used, result.negative_used) == (PROMPT, NEGATIVE)


# -- batching --------------------------------------------------------------------------------


def test_batch_key_keeps_img2img_apart_from_text_and_other_strengths(source):
    data = png_bytes(source)
    text = GenerationRequest(prompt=PROMPT, steps=6, height=64, width=64, scheduler="lms")
    assert vary(data).batch_key() != text.batch_key()
    assert vary(data).batch_key() != vary(data, strength=0.35).batch_key()
    assert vary(data).batch_key() == vary(b"another picture", seed=9, prompt="猫").batch_key()


def test_batched_member_equals_the_same_job_alone(tiny_engine, source):
    first = vary(png_bytes(source))
    second = vary(
        png_bytes(source.transpose(Image.Transpose.FLIP_TOP_BOTTOM)), prompt="漫画の鳥", seed=99
    )
    together = tiny_engine.generate([first, second])
    alone = [tiny_engine.generate([r])[0] for r in (first, second)]
    for batched, single in zip(together, alone, strict=True):
        assert np.abs(pixels(batched) - pixels(single)).max() <= TOLERANCE


def test_img2img_and_text_to_image_in_one_batch_are_refused(tiny_engine, source):
    text = GenerationRequest(prompt=PROMPT, steps=6, height=64, width=64, scheduler="lms")
    with pytest.raises(ValueError, match="batch_key"):
        tiny_engine.generate([vary(png_bytes(source)), text])


def test_a_broken_source_fails_its_member_alone(tiny_engine, source):
    good = vary(png_bytes(source))
    results = tiny_engine.generate(
        [vary(b"GIF89a not supported"), good, vary(b"\x89PNG\r\n\x1a\n")]
    )
    assert isinstance(results[0], InputImageTypeError)
    assert type(results[2]) is BadInputImageError
    assert results[2].ours is False
    alone = tiny_engine.generate([good])[0]
    assert np.abs(pixels(results[1]) - pixels(alone)).max() <= TOLERANCE


def test_every_source_broken_runs_nothing(tiny_engine):
    with count_calls(tiny_engine) as counts:
        results = tiny_engine.generate([vary(b"not a picture")])
    assert isinstance(results[0], InputImageTypeError)
    assert counts == {"unet": 0, "decode": 0}


def test_on_step_reports_the_steps_that_run(tiny_engine, source):
    steps: list[tuple[int, int]] = []
    tiny_engine.generate(
        [vary(png_bytes(source))], on_step=lambda s, t, _peek: steps.append((s, t))
    )
    assert steps == [(1, 3), (2, 3), (3, 3)]  # int(6 * 0.5)


def test_all_members_cancelled_stops_within_one_step(tiny_engine, source):
    with count_calls(tiny_engine) as counts:
        results = tiny_engine.generate(
            [vary(png_bytes(source), steps=20)],
            on_step=None,
            is_cancelled=lambda _i: counts["unet"] > 0,
        )
    assert counts == {"unet": 1, "decode": 0}
    assert results[0].code == "cancelled"


def test_img2img_shares_the_loaded_modules_and_leaves_the_scheduler_config_alone(
    tiny_engine, source
):
    engine = Engine(  # a fresh engine over the loaded modules: its img2img is not built yet
        tiny_engine.pipe,
        tiny_engine.tokenizer,
        device="cpu",
        dtype=tiny_engine.dtype,
        safety_checker=False,
        model=tiny_engine.model,
    )
    before = dict(engine._scheduler("lms").config)
    engine.generate([vary(png_bytes(source), steps=2)])
    img2img = engine._img2img
    assert img2img.unet is tiny_engine.pipe.unet
    assert img2img.vae is tiny_engine.pipe.vae
    assert img2img.text_encoder is tiny_engine.pipe.text_encoder
    assert img2img.scheduler is engine._scheduler("lms")
    assert dict(engine._scheduler("lms").config) == before


# -- refused requests ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"strength": 0.0}, "strength must be above 0 and below 1"),
        ({"strength": 1.0}, "strength must be above 0 and below 1"),
        ({"steps": 2, "strength": 0.3}, "run no denoising step"),
        ({"init_image": None}, "strength is for image-to-image only"),
    ],
)
def test_inconsistent_requests_are_refused(tiny_engine, source, changes, message):
    with pytest.raises(ValueError, match=message):
        tiny_engine.generate([vary(png_bytes(source), **changes)])


def test_denoising_steps_is_diffusers_count():
    assert vary(b"x", steps=25, strength=0.35).denoising_steps() == 8
    assert vary(b"x", steps=25, strength=0.65).denoising_steps() == 16
    assert vary(b"x", steps=2, strength=0.3).denoising_steps() == 0
    assert vary(None, strength=0.0, steps=25).denoising_steps() == 25
