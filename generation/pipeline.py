"""The Engine: one loaded model that turns a batch of GenerationRequests into PNGs.

It reproduces rinna's `JapaneseStableDiffusionPipeline` (diffusers 0.8.1) on today's diffusers:
prompts are tokenized by `RinnaTokenizer` and encoded here without an attention mask, and the
pipeline gets `prompt_embeds` / `negative_prompt_embeds`; initial latents are drawn per member on
a CPU `torch.Generator` so a batched member equals the same job run alone; denoising runs with
`output_type="latent"` so that cancelled members are never decoded, and decoding, the NaN/black
check, the safety checker and PNG encoding happen here, per member.

English prompts of requests with `translate` are translated to Japanese first (prompt and
negative prompt each on its own; see `generation.translate` for which text counts as English),
and each result reports the texts the tokenizer actually got.

Requests with an `init_image` run image-to-image: diffusers' `StableDiffusionImg2ImgPipeline`
assembled from the very modules already loaded (no second copy of any weight), given the same
prompt embeddings, one CPU `torch.Generator` per member (it draws that member's VAE-encoding
sample and its noise, so a seed means one picture whatever the batch), and the source picture
decoded and resized by `generation.images`.

Only the generation worker thread calls `generate`; an Engine is not thread-safe.
"""

from __future__ import annotations

import io
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import Any

from generation.errors import (
    BadImageError,
    FatalDeviceError,
    GenerationError,
    JobCancelledError,
    OutOfMemoryError,
    UnsafeImageError,
    one_line,
)
from generation.fastpath import EagerPath, begin_at_zero
from generation.images import BadInputImageError, decode_image
from generation.pnginfo import PNG_PARAMETERS_KEY, a1111_parameters
from generation.tokenizer import RinnaTokenizer
from generation.translate import NullTranslator, Translator, translate_prompt
from generation.types import (
    MAX_COUNT,
    SCHEDULERS,
    GeneratedImage,
    GenerationRequest,
    TokenizedPrompt,
)

log = logging.getLogger(__name__)

OnStep = Callable[[int, int], None]
IsCancelled = Callable[[int], bool]

WARMUP_SIZE = 512  # the model's native resolution: what torch.compile is warmed up for
# zlib level 1: the same pixels, 7× less CPU than Pillow's default 6 for 14 % more bytes on a
# 512² drawing (docs/PERFORMANCE.md, "PNG compression level"); the PNG is on the critical path.
PNG_COMPRESS_LEVEL = 1


class Engine:
    """A loaded pipeline plus its tokenizer. Built by `generation.loader.load_engine`."""

    def __init__(
        self,
        pipe: Any,
        tokenizer: RinnaTokenizer,
        *,
        device: str,
        dtype: str,
        safety_checker: bool,
        model: str,
        scheduler_config: Mapping[str, Any] | None = None,
        translator: Translator | None = None,
    ) -> None:
        self.pipe = pipe
        self.tokenizer = tokenizer
        # Used only for requests with `translate`; runs on this (the worker's) thread.
        self.translator: Translator = translator or NullTranslator()
        self.device = device
        self.dtype = dtype
        self.safety_checker = safety_checker
        self.model = model
        self._scheduler_config = dict(scheduler_config or {})
        self._schedulers: dict[str, Any] = {}
        self._img2img: Any = None
        self.compiled = False
        # Which modules run each batch: eager, or compiled for warmed shapes (generation.fastpath).
        self.path: EagerPath = EagerPath()
        self.free_bytes: int | None = None  # GPU memory free once loaded (set by the loader)

    # -- public ------------------------------------------------------------------------

    def tokenize(self, text: str) -> TokenizedPrompt:
        """The 77 ids the text encoder sees for `text`, with the real length and a cut flag."""
        return self.tokenizer.encode(text)

    def text_for(self, text: str, *, translate: bool) -> str:
        """What the tokenizer gets for `text`: its translation when asked and English, else it."""
        return translate_prompt(self.translator, text) if translate else text

    def generate(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: OnStep | None = None,
        is_cancelled: IsCancelled | None = None,
    ) -> list[GeneratedImage | GenerationError]:
        """Run one batch (all requests share one `batch_key()`): one entry per *picture*, in
        order, a request with `count` n giving n entries (seeds `request.seeds()`).

        A request with `count` n is n members of the batch, each a copy with count 1 and its
        own seed; `is_cancelled(i)` is asked by request index and cancels all of its pictures.
        Per-picture failures come back as error entries; `OutOfMemoryError` and
        `FatalDeviceError` are raised for the whole call.
        """
        _check_batch(requests)
        members: list[GenerationRequest] = []
        owners: list[int] = []
        for index, request in enumerate(requests):
            for seed in request.seeds():
                members.append(replace(request, seed=seed, count=1))
                owners.append(index)

        def member_cancelled(member: int) -> bool:
            return is_cancelled is not None and is_cancelled(owners[member])

        return self._generate_members(
            members,
            on_step=on_step,
            is_cancelled=member_cancelled if is_cancelled is not None else None,
        )

    def _generate_members(
        self,
        requests: Sequence[GenerationRequest],
        *,
        on_step: OnStep | None,
        is_cancelled: IsCancelled | None,
    ) -> list[GeneratedImage | GenerationError]:
        """`generate` for requests of one picture each: one entry per request."""
        import torch

        cancelled: set[int] = set()

        def poll_cancelled() -> None:
            if is_cancelled is None:
                return
            for index in range(len(requests)):
                if index not in cancelled and _safe_call(is_cancelled, index):
                    cancelled.add(index)

        poll_cancelled()
        # Members cancelled while queued for this batch are dropped before any work.
        live = [i for i in range(len(requests)) if i not in cancelled]
        results: list[GeneratedImage | GenerationError] = [
            JobCancelledError("cancelled before it started") for _ in requests
        ]
        # Source pictures are decoded first: a broken one fails its member alone.
        sources: dict[int, Any] = {}
        for index in live:
            data = requests[index].init_image
            if data is None:
                continue
            try:
                sources[index] = decode_image(data, requests[index].width, requests[index].height)
            except BadInputImageError as exc:
                results[index] = exc
        if requests[0].is_img2img:
            live = [i for i in live if i in sources]
        if not live:
            return results
        oom: str | None = None
        # Read only after `_generate` returned; bound here because an OOM leaves it unset.
        produced: list[GeneratedImage | GenerationError] = []
        try:
            produced = self.path.guard(
                lambda: self._generate(
                    [requests[i] for i in live],
                    live,
                    cancelled,
                    poll_cancelled,
                    on_step,
                    sources=[sources[i] for i in live if i in sources],
                )
            )
        except torch.cuda.OutOfMemoryError as exc:
            # Only the text is kept: the traceback's frames still hold the batch's tensors,
            # and the cache can be emptied only once they are gone.
            oom = one_line(exc)
        except RuntimeError as exc:
            if _is_device_error(exc, self.device):
                raise FatalDeviceError(f"CUDA error: {one_line(exc)}") from exc
            raise
        if oom is not None:
            _free_cuda_cache()
            raise OutOfMemoryError(f"out of GPU memory for a batch of {len(live)}: {oom}")
        for index, result in zip(live, produced, strict=True):
            results[index] = result
        return results

    def compile_unet(self) -> None:
        """The fast path (`generation.fastpath`), warmed up for one picture at the native size
        before this returns (CUDA only; a failure leaves the engine eager, with one warning)."""
        from generation.fastpath import TIMESTEP_DTYPES, enable

        dtype = TIMESTEP_DTYPES["dpmpp-2m"]
        enable(self, mode="blocking", shapes=[(1, WARMUP_SIZE, WARMUP_SIZE, dtype)])

    # -- steps -------------------------------------------------------------------------

    def _generate(
        self,
        requests: Sequence[GenerationRequest],
        members: Sequence[int],
        cancelled: set[int],
        poll_cancelled: Callable[[], None],
        on_step: OnStep | None,
        *,
        sources: Sequence[Any],
    ) -> list[GeneratedImage | GenerationError]:
        import torch

        first = requests[0]

        # 1. Translate English prompts, each text on its own (only requests that ask).
        started = time.perf_counter()
        prompts = [self.text_for(r.prompt, translate=r.translate) for r in requests]
        negatives_used = [
            self.text_for(r.negative_prompt or "", translate=r.translate) for r in requests
        ]
        translate_s = time.perf_counter() - started

        # 2. Tokenize and encode every prompt and negative prompt in one text-encoder call.
        started = time.perf_counter()
        tokens = [self.tokenizer.encode(text) for text in prompts]
        negatives = [self.tokenizer.encode(text) for text in negatives_used]
        embeds = self._encode([t.ids for t in tokens] + [n.ids for n in negatives])
        prompt_embeds, negative_embeds = embeds[: len(requests)], embeds[len(requests) :]
        encode_s = time.perf_counter() - started

        # 3. Denoise, polling for cancellation after every step.
        def step_end(pipeline: Any, index: int, _t: Any, tensors: dict[str, Any]) -> dict[str, Any]:
            poll_cancelled()
            if cancelled.issuperset(members):
                pipeline._interrupt = True  # the loop skips every remaining step
            elif on_step is not None:
                _safe_call(on_step, index + 1, pipeline.num_timesteps)
            return tensors

        scheduler = self._scheduler(first.scheduler)
        self.path.select(self.pipe, len(requests), first.height, first.width, first.scheduler)
        started = time.perf_counter()
        if first.is_img2img:
            latents = self._img2img_pipe(scheduler)(
                prompt_embeds=prompt_embeds,
                negative_prompt_embeds=negative_embeds,
                image=list(sources),
                strength=first.strength,
                num_inference_steps=first.steps,
                guidance_scale=first.guidance,
                generator=[torch.Generator("cpu").manual_seed(r.seed) for r in requests],
                output_type="latent",
                return_dict=False,
                callback_on_step_end=step_end,
            )[0]
        else:
            latents = self._text2img(requests, prompt_embeds, negative_embeds, scheduler, step_end)
        denoise_s = time.perf_counter() - started

        # 4. Decode, check and encode each member that is still wanted.
        results: list[GeneratedImage | GenerationError] = []
        for index, request in enumerate(requests):
            poll_cancelled()
            if members[index] in cancelled:
                results.append(JobCancelledError("cancelled while running"))
                continue
            timings = {"encode": encode_s, "denoise": denoise_s}
            if request.translate:
                timings["translate"] = translate_s
            texts = (prompts[index], negatives_used[index])
            results.append(
                self._finish(request, tokens[index], latents[index : index + 1], timings, texts)
            )
        return results

    def _text2img(
        self,
        requests: Sequence[GenerationRequest],
        prompt_embeds: Any,
        negative_embeds: Any,
        scheduler: Any,
        step_end: Callable[..., dict[str, Any]],
    ) -> Any:
        """The denoised latents of a text-to-image batch."""
        import torch

        first = requests[0]
        pipe = self.pipe

        # Initial noise: one CPU generator per member, so a seed means one image whatever
        # the batch. float32 then cast equals drawing in the target dtype (as 0.8.1 did).
        scale = pipe.vae_scale_factor
        latents = torch.cat(
            [
                torch.randn(
                    (1, pipe.unet.config.in_channels, first.height // scale, first.width // scale),
                    generator=torch.Generator("cpu").manual_seed(r.seed),
                    dtype=torch.float32,
                )
                for r in requests
            ]
        ).to(device=self.device, dtype=prompt_embeds.dtype)
        pipe.scheduler = scheduler
        return pipe(
            prompt_embeds=prompt_embeds,
            negative_prompt_embeds=negative_embeds,
            height=first.height,
            width=first.width,
            num_inference_steps=first.steps,
            guidance_scale=first.guidance,
            latents=latents,
            output_type="latent",
            return_dict=False,
            callback_on_step_end=step_end,
        )[0]

    def _img2img_pipe(self, scheduler: Any) -> Any:
        """diffusers' image-to-image pipeline over this engine's own modules (built once).

        It holds references, not copies: the UNet, VAE and text encoder are the very objects
        `self.pipe` holds (re-read each call, so a compiled UNet is used by both). The
        scheduler is attached after construction: the constructor would rewrite the config of
        a scheduler it is given (`steps_offset`), and ours are shared with text-to-image.
        """
        pipe = self.pipe
        if self._img2img is None:
            from diffusers import StableDiffusionImg2ImgPipeline  # pyright: ignore[reportPrivateImportUsage]

            self._img2img = StableDiffusionImg2ImgPipeline(
                vae=pipe.vae,
                text_encoder=pipe.text_encoder,
                tokenizer=None,  # pyright: ignore[reportArgumentType]
                unet=pipe.unet,
                scheduler=None,  # pyright: ignore[reportArgumentType]
                # The safety checker runs in `_finish`, as for text-to-image.
                safety_checker=None,  # pyright: ignore[reportArgumentType]
                feature_extractor=None,  # pyright: ignore[reportArgumentType]
                requires_safety_checker=False,
            )
            self._img2img.set_progress_bar_config(disable=True)
        img2img = self._img2img
        if img2img.unet is not pipe.unet:
            img2img.unet = pipe.unet
        if img2img.scheduler is not scheduler:
            img2img.scheduler = scheduler
        return img2img

    def _encode(self, ids: Sequence[Sequence[int]]) -> Any:
        """Text-encoder hidden states for rows of ids; no attention mask, like the original."""
        import torch

        encoder = self.pipe.text_encoder
        batch = torch.tensor(ids, dtype=torch.long, device=self.device)
        with torch.no_grad():
            return encoder(batch)[0].to(encoder.dtype)

    def _finish(
        self,
        request: GenerationRequest,
        tokens: TokenizedPrompt,
        latents: Any,
        timings: dict[str, float],
        texts: tuple[str, str],
    ) -> GeneratedImage | GenerationError:
        import numpy as np
        import torch

        pipe = self.pipe
        started = time.perf_counter()
        with torch.no_grad():
            scaled = latents / pipe.vae.config.scaling_factor
            decoded = self.path.decode(pipe.vae, scaled)
            image = (decoded / 2 + 0.5).clamp(0, 1).cpu().permute(0, 2, 3, 1).float().numpy()
        timings["decode"] = time.perf_counter() - started

        if not np.isfinite(image).all():
            return BadImageError("the image came out with NaN values")
        pixels = (image * 255).round().astype("uint8")
        if not pixels.any():
            return BadImageError("the image came out all black")

        started = time.perf_counter()
        if self.safety_checker and pipe.safety_checker is not None:
            from PIL import Image

            features = pipe.feature_extractor([Image.fromarray(pixels[0])], return_tensors="pt")
            clip_input = features.pixel_values.to(device=self.device, dtype=latents.dtype)
            with torch.no_grad():
                _, flagged = pipe.safety_checker(images=image.copy(), clip_input=clip_input)
            if flagged[0]:
                return UnsafeImageError("the safety checker flagged the image")
        timings["safety"] = time.perf_counter() - started

        started = time.perf_counter()
        # The PNG says how it was made (the text the model was given, after any translation).
        parameters = a1111_parameters(
            request, request.seed, self.model, prompt=texts[0], negative=texts[1]
        )
        png = _png(pixels[0], parameters)
        timings["png"] = time.perf_counter() - started
        return GeneratedImage(
            png=png,
            seed=request.seed,
            steps=request.steps,
            width=request.width,
            height=request.height,
            token_count=tokens.count,
            truncated=tokens.truncated,
            timings=timings,
            prompt_used=texts[0],
            negative_used=texts[1],
        )

    def use_scheduler(self, name: str, scheduler: Any) -> None:
        """Run requests naming `name` with this scheduler instance (benchmarks compare
        diffusers' stock LMS with the project's this way)."""
        self._schedulers[name] = scheduler

    def _scheduler(self, name: str) -> Any:
        scheduler = self._schedulers.get(name)
        if scheduler is None:
            from generation.schedulers import make_scheduler

            # Text-to-image starts at index 0: no search for it on the GPU (a sync) per job.
            scheduler = begin_at_zero(make_scheduler(name, self._scheduler_config))
            self._schedulers[name] = scheduler
        return scheduler


def _check_batch(requests: Sequence[GenerationRequest]) -> None:
    if not requests:
        raise ValueError("generate() needs at least one request")
    key = requests[0].batch_key()
    if any(r.batch_key() != key for r in requests[1:]):
        raise ValueError("every request in a batch must have the same batch_key()")
    first = requests[0]
    if first.scheduler not in SCHEDULERS:
        raise ValueError(
            f"unknown scheduler {first.scheduler!r}; choose one of: {', '.join(SCHEDULERS)}"
        )
    if first.height % 8 or first.width % 8 or first.height <= 0 or first.width <= 0:
        raise ValueError(
            f"height and width must be positive multiples of 8, not {first.height}x{first.width}"
        )
    if first.steps < 1:
        raise ValueError(f"steps must be at least 1, not {first.steps}")
    if any(not 1 <= r.count <= MAX_COUNT for r in requests):
        raise ValueError(f"count must be from 1 to {MAX_COUNT}")
    if first.is_img2img:
        if not 0.0 < first.strength < 1.0:
            raise ValueError(
                f"strength must be above 0 and below 1 for image-to-image, not {first.strength}"
            )
        if first.denoising_steps() < 1:
            raise ValueError(
                f"{first.steps} steps at strength {first.strength} run no denoising step; "
                "raise the steps or the strength"
            )
    elif first.strength != 0.0:
        raise ValueError("strength is for image-to-image only: give an init_image, or strength 0")


def _png(pixels: Any, parameters: str) -> bytes:
    from PIL import Image
    from PIL.PngImagePlugin import PngInfo

    info = PngInfo()
    info.add_text(PNG_PARAMETERS_KEY, parameters)  # tEXt if Latin-1, else an iTXt chunk
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(
        buffer, format="PNG", pnginfo=info, compress_level=PNG_COMPRESS_LEVEL
    )
    return buffer.getvalue()


def _safe_call(callback: Callable[..., Any], *args: Any) -> Any:
    """Call a caller-supplied hook; a bug in it must not kill the batch (it is logged)."""
    try:
        return callback(*args)
    except Exception:
        log.exception("generation callback %r failed", callback)
        return None


def _is_device_error(exc: BaseException, device: str) -> bool:
    import torch

    if not device.startswith("cuda"):
        return False
    accelerator_error = getattr(torch, "AcceleratorError", None)
    if accelerator_error is not None and isinstance(exc, accelerator_error):
        return True
    text = str(exc)
    return any(marker in text for marker in ("CUDA", "cuDNN", "CUBLAS", "cublas", "NCCL"))


def _free_cuda_cache() -> None:
    import gc

    import torch

    gc.collect()
    if torch.cuda.is_available():
        torch.cuda.empty_cache()
