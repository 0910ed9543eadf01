"""Find a checkpoint (local folder or Hub id) and load it, component by component, into an Engine.

The published checkpoint predates today's libraries: its `model_index.json` names
`CLIPFeatureExtractor` (gone from transformers 5) and a `T5Tokenizer` that transformers 5 no
longer loads the way the model was trained. So nothing here calls
`DiffusionPipeline.from_pretrained`: each component is loaded on its own, the tokenizer is our
`RinnaTokenizer`, and `StableDiffusionPipeline` is built with its constructor. Every failure
becomes a `ModelLoadError` with one line an operator can act on.
"""

from __future__ import annotations

import logging
import re
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast

from generation.errors import ModelLoadError, one_line
from generation.hub import (
    HubError,
    hub_files,
    is_hub_id,
    quiet_libraries,
    read_json,
    resolve,
)
from generation.tokenizer import RinnaTokenizer, TokenizerLoadError

if TYPE_CHECKING:
    from generation.pipeline import Engine
    from generation.translate import Translator

log = logging.getLogger(__name__)

PIPELINE_CLASSES = ("StableDiffusionPipeline", "JapaneseStableDiffusionPipeline")
REQUIRED = ("unet", "vae", "text_encoder", "tokenizer")
# Weight files that are variants of the main ones (we load the main ones and cast).
_VARIANT = re.compile(r"\.(fp16|bf16|non_ema|ema)\.")
_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


def resolve_model(source: str | Path, *, tokenizer_only: bool = False) -> Path:
    """A local model folder, or a Hub id downloaded (or found in the cache) → the folder.

    `tokenizer_only`: of a Hub id, only model_index.json and the tokenizer are fetched."""
    return resolve(
        source,
        what="model",
        setting="POKEMON_MODEL",
        check_folder=_check_folder,
        from_hub=lambda repo_id: _from_hub(repo_id, tokenizer_only=tokenizer_only),
    )


def _check_folder(path: Path) -> Path:
    if not path.is_dir():
        raise ModelLoadError(f"{path} is a file, not a model folder")
    if not (path / "model_index.json").is_file():
        raise ModelLoadError(
            f"{path} is not a diffusers model folder (no model_index.json); "
            "expected the layout of svjack/Stable-Diffusion-Pokemon-ja"
        )
    return path.resolve()


def load_tokenizer(source: str | Path) -> RinnaTokenizer:
    """Only the tokenizer of `source` (folder or Hub id): no torch, no weights downloaded."""
    return _load_tokenizer(resolve_model(source, tokenizer_only=True))


def _from_hub(repo_id: str, *, tokenizer_only: bool = False) -> Path:
    """Download (or find in the cache) the files of `repo_id` that loading needs."""
    from huggingface_hub import constants, snapshot_download
    from huggingface_hub.errors import LocalEntryNotFoundError

    def needed(files: list[str]) -> list[str]:
        wanted = _wanted_files(files)
        if tokenizer_only:
            wanted = [f for f in wanted if f == "model_index.json" or f.startswith("tokenizer/")]
        return wanted

    def cached() -> Path | None:
        # huggingface_hub 2 refuses a cached snapshot that lacks any file of the repo's cached
        # listing unless told which files count; we download only some, so say which.
        try:
            from huggingface_hub import get_cached_repo_tree

            patterns = needed([f.path for f in get_cached_repo_tree(repo_id)])
        except Exception:  # older huggingface_hub, or no listing cached: nothing to check against
            patterns = None
        try:
            return Path(snapshot_download(repo_id, local_files_only=True, allow_patterns=patterns))
        except (LocalEntryNotFoundError, OSError, ValueError):
            return None

    if constants.HF_HUB_OFFLINE:
        folder = cached()
        if folder is None:
            raise ModelLoadError(
                f"{repo_id} is not a local folder and is not in the Hugging Face cache "
                f"({constants.HF_HUB_CACHE}), and HF_HUB_OFFLINE is set; download it once "
                "online or point POKEMON_MODEL at a local folder"
            )
        return _check_folder(folder)

    try:
        files = hub_files(repo_id)
    except HubError as exc:
        if exc.reason != "unreachable":
            raise
        folder = cached()
        if folder is not None:
            log.warning("cannot reach the Hugging Face Hub (%s); using the cached %s", exc, repo_id)
            return _check_folder(folder)
        raise ModelLoadError(
            f"cannot reach the Hugging Face Hub to download {repo_id} ({exc}) "
            "and it is not cached; check the network or use a local folder"
        ) from exc

    wanted = needed(files)
    log.info("downloading %s: %d files (cached files are reused)", repo_id, len(wanted))
    started = time.monotonic()
    try:
        folder = Path(snapshot_download(repo_id, allow_patterns=wanted, tqdm_class=_logging_tqdm()))
    except Exception as exc:
        raise ModelLoadError(f"downloading {repo_id} failed: {one_line(exc)}") from exc
    log.info("model %s ready in %s (%.1fs)", repo_id, folder, time.monotonic() - started)
    return _check_folder(folder)


# --- checks without loading: what `pokemon-bot doctor` asks ---------------------------------

# Component configs not named config.json, and the components that cannot do without weights.
_CONFIG_FILE = {
    "scheduler": "scheduler_config.json",
    "feature_extractor": "preprocessor_config.json",
}
_WEIGHTED = frozenset({"unet", "vae", "text_encoder", "safety_checker"})


@dataclass(frozen=True, slots=True)
class ModelParts:
    """What a model folder holds: model_index.json's components and the parts it lacks.

    `missing` are parts the loader refuses to go without; `optional_missing` are parts it
    replaces with defaults or turns off (scheduler, safety checker, feature extractor).
    """

    folder: Path
    components: dict[str, Any]
    missing: tuple[str, ...]
    optional_missing: tuple[str, ...]

    @property
    def present(self) -> dict[str, Any]:
        """The listed components that are whole."""
        lacking = self.missing + self.optional_missing
        return {
            name: value
            for name, value in self.components.items()
            if not any(m.startswith(f"{name}/") for m in lacking)
        }


def model_parts(folder: Path) -> ModelParts:
    """Inventory `folder` the way `load_engine` reads it, without loading anything."""
    index_path = folder / "model_index.json"
    if not index_path.is_file():
        return ModelParts(folder, {}, ("model_index.json",), ())
    try:
        index = read_json(index_path, required=True)
    except ModelLoadError as exc:
        return ModelParts(folder, {}, (f"a readable model_index.json ({exc})",), ())
    missing: list[str] = []
    optional_missing: list[str] = []
    if index.get("_class_name") not in PIPELINE_CLASSES:
        missing.append(
            f"a Stable Diffusion pipeline (model_index.json names {index.get('_class_name')})"
        )
    components: dict[str, Any] = {
        key: value
        for key, value in index.items()
        if not key.startswith("_") and isinstance(value, list) and value and value[0] is not None
    }
    for name in sorted(set(components) | set(REQUIRED)):
        found = missing if name in REQUIRED else optional_missing
        sub = folder / name
        if not sub.is_dir():
            found.append(f"{name}/")
            continue
        if name == "tokenizer":
            # A sentencepiece tokenizer needs its model file; configs alone are not enough.
            if not any(sub.glob("*.model")) and not (sub / "tokenizer.json").is_file():
                found.append("tokenizer/spiece.model")
            continue
        config = _CONFIG_FILE.get(name, "config.json")
        if not (sub / config).is_file():
            found.append(f"{name}/{config}")
        if name in _WEIGHTED and not any(
            p.name.endswith((".safetensors", ".bin")) for p in sub.iterdir() if p.is_file()
        ):
            found.append(f"{name}/ weights (*.safetensors or *.bin)")
    return ModelParts(folder, components, tuple(missing), tuple(optional_missing))


ModelState = Literal[
    "folder",  # a local folder (see `model_parts` for whether it is whole)
    "not_found",  # a path that does not exist
    "not_a_folder",  # a path to a file
    "cached",  # a Hub id found in the local cache
    "not_cached_offline",  # a Hub id, not cached, and HF_HUB_OFFLINE forbids downloading
    "downloadable",  # a Hub id, not cached, that the Hub has
    "unreachable",  # a Hub id, not cached, and the Hub did not answer
    "unknown",  # a Hub id the Hub does not know (or that needs a login)
]


@dataclass(frozen=True, slots=True)
class ModelLocation:
    """Where a model source points, found without loading (or downloading) anything."""

    source: str
    state: ModelState
    folder: Path | None  # the local folder or cached snapshot, when there is one
    cache: str  # the Hugging Face cache folder (for Hub ids)
    detail: str = ""  # the Hub's answer, when it refused or was unreachable


def locate_model(source: str, *, ask_hub: bool = True) -> ModelLocation:
    """Classify `source` as `resolve_model` would; asks the Hub once (if allowed and needed)."""
    from huggingface_hub import constants, try_to_load_from_cache

    cache = str(constants.HF_HUB_CACHE)
    text = source.strip()
    path = Path(text).expanduser()
    if not is_hub_id(text) or path.exists():
        folder = path.resolve()
        if not folder.exists():
            return ModelLocation(text, "not_found", folder, cache)
        if not folder.is_dir():
            return ModelLocation(text, "not_a_folder", folder, cache)
        return ModelLocation(text, "folder", folder, cache)
    cached = try_to_load_from_cache(text, "model_index.json")
    if isinstance(cached, str):
        return ModelLocation(text, "cached", Path(cached).parent, cache)
    if constants.HF_HUB_OFFLINE or not ask_hub:
        return ModelLocation(text, "not_cached_offline", None, cache)
    try:
        hub_files(text)
    except HubError as exc:
        state: ModelState = "unreachable" if exc.reason == "unreachable" else "unknown"
        return ModelLocation(text, state, None, cache, str(exc))
    return ModelLocation(text, "downloadable", None, cache)


def native_size(folder: Path) -> int | None:
    """The image side the checkpoint was trained at (UNet sample size × VAE scale), if known."""
    unet = read_json(folder / "unet" / "config.json")
    vae = read_json(folder / "vae" / "config.json")
    sample = unet.get("sample_size")
    blocks = vae.get("block_out_channels")
    if isinstance(sample, list):  # diffusers allows (height, width); ours are square
        sample = cast("list[object]", sample)[0]
    if not isinstance(sample, int) or not isinstance(blocks, list) or not blocks:
        return None
    return sample * 2 ** (len(cast("list[object]", blocks)) - 1)


def _wanted_files(files: list[str]) -> list[str]:
    """model_index.json and each component's configs plus one weight format (safetensors first)."""
    wanted = [f for f in files if f == "model_index.json"]
    by_folder: dict[str, list[str]] = {}
    for name in files:
        if "/" in name and name.count("/") == 1:
            by_folder.setdefault(name.split("/")[0], []).append(name)
    for names in by_folder.values():
        weights = [n for n in names if n.endswith((".safetensors", ".bin"))]
        main = [n for n in weights if not _VARIANT.search(n.split("/")[1])]
        safetensors = [n for n in main if n.endswith(".safetensors")]
        wanted += safetensors or [n for n in main if n.endswith(".bin")]
        wanted += [n for n in names if n.endswith((".json", ".txt", ".model"))]
    return wanted


def _logging_tqdm() -> type:
    """A tqdm class that reports download progress to the log at INFO instead of a terminal bar."""
    from tqdm.auto import tqdm

    class LoggingTqdm(tqdm):  # type: ignore[misc, valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["disable"] = False
            kwargs["file"] = _NullWriter()  # the log line below replaces the terminal bar
            # snapshot_download's byte bars start without a total and grow it by each file's
            # size as that file starts, so their share is of a moving total (see update).
            self._grows = not kwargs.get("total")
            super().__init__(*args, **kwargs)
            self._last_logged = -1
            self._seen_total = self.total

        def update(self, n: float | None = 1) -> bool | None:
            result = super().update(n)
            if self.total:
                tenth = int(10 * self.n / self.total)
                if self._grows:
                    # A moved total restarts the count without a line, and a growing bar never
                    # says 100%: the first small file would otherwise "finish" the download.
                    if self.total != self._seen_total:
                        self._seen_total = self.total
                        self._last_logged = tenth
                    tenth = min(tenth, 9)
                if tenth > self._last_logged:
                    self._last_logged = tenth
                    log.info("download %s: %d%%", self.desc or "files", tenth * 10)
            return result

    return LoggingTqdm


class _NullWriter:
    def write(self, _text: str) -> int:
        return 0

    def flush(self) -> None:
        return None


def load_engine(
    source: str | Path,
    *,
    device: str = "auto",
    safety_checker: bool = True,
    compile: bool = False,
    dtype: str | None = None,
    translator: Translator | None = None,
) -> Engine:
    """Load the checkpoint at `source` (folder or Hub id) onto `device` and return an Engine.

    `dtype` overrides the weights' precision (`float32`, `float16`, `bfloat16`); by default
    fp16 on CUDA and float32 on CPU. The benchmark uses it for the model card's fp32 recipe.
    `translator` (see `generation.translate.load_translator_or_null`) serves requests with
    `translate`; without one, English prompts pass through untranslated.
    """
    folder = resolve_model(source)
    index = read_json(folder / "model_index.json", required=True)
    pipeline_class = index.get("_class_name")
    if pipeline_class not in PIPELINE_CLASSES:
        raise ModelLoadError(
            f"{folder} holds a {pipeline_class or 'unknown'} pipeline, not a Stable Diffusion "
            f"text-to-image model ({' or '.join(PIPELINE_CLASSES)})"
        )
    for name in REQUIRED:
        if not (folder / name).is_dir():
            raise ModelLoadError(f"{folder} is missing the {name}/ component")

    torch_device, default_dtype = _pick_device(device)
    import torch

    if dtype is None:
        dtype = default_dtype
    elif dtype in _DTYPES:
        dtype = getattr(torch, dtype)
    else:
        raise ModelLoadError(f"unknown dtype {dtype!r}: use {', '.join(_DTYPES)}")

    started = time.monotonic()
    with quiet_libraries():
        # The documented imports; pyright calls them private (diffusers has no `__all__`).
        from diffusers import AutoencoderKL, StableDiffusionPipeline, UNet2DConditionModel  # pyright: ignore[reportPrivateImportUsage]
        from diffusers.models.attention_processor import AttnProcessor2_0

        tokenizer = _load_tokenizer(folder)
        text_encoder = _load_text_encoder(folder, dtype)
        unet = _component("unet", folder, UNet2DConditionModel, torch_dtype=dtype)
        vae = _component("vae", folder, AutoencoderKL, torch_dtype=dtype)
        checker, feature_extractor = _load_safety(folder, index, dtype, wanted=safety_checker)
        scheduler_config = read_json(folder / "scheduler" / "scheduler_config.json")

        from generation.schedulers import make_scheduler

        try:
            pipe = StableDiffusionPipeline(
                vae=vae,
                text_encoder=text_encoder,
                # Prompts arrive as embeddings from RinnaTokenizer; diffusers' annotation
                # requires a CLIPTokenizer, but the pipeline only uses it for text prompts.
                tokenizer=None,  # pyright: ignore[reportArgumentType]
                unet=unet,
                scheduler=make_scheduler("lms", scheduler_config),
                safety_checker=checker,
                feature_extractor=feature_extractor,
                requires_safety_checker=False,
            )
            pipe.set_progress_bar_config(disable=True)
            pipe.to(torch_device)
        except Exception as exc:
            raise ModelLoadError(
                f"cannot assemble the pipeline from {folder}: {one_line(exc)}"
            ) from exc
        # SDPA attention: diffusers' default with torch 2, made explicit so nothing else slips in.
        pipe.unet.set_attn_processor(AttnProcessor2_0())
        pipe.vae.set_attn_processor(AttnProcessor2_0())
        if torch_device.startswith("cuda"):
            pipe.unet.to(memory_format=torch.channels_last)

    from generation.pipeline import Engine

    engine = Engine(
        pipe,
        tokenizer,
        device=torch_device,
        dtype=str(dtype).removeprefix("torch."),
        safety_checker=checker is not None,
        model=str(source),
        scheduler_config=scheduler_config,
        translator=translator,
    )
    from generation.fastpath import free_gpu_bytes

    engine.free_bytes = free_gpu_bytes(torch_device)  # sizes the batches (device_policy)
    log.info(
        "loaded %s on %s (%s, safety checker %s) in %.1fs",
        source,
        torch_device,
        engine.dtype,
        "on" if engine.safety_checker else "off",
        time.monotonic() - started,
    )
    if compile:
        if torch_device.startswith("cuda"):
            engine.compile_unet()
        else:
            log.info("torch.compile is used on CUDA only; running %s uncompiled", torch_device)
    return engine


def _pick_device(device: str) -> tuple[str, Any]:
    """`auto` → cuda if available else cpu; fp16 weights on CUDA, float32 on CPU."""
    import torch

    choice = device.strip().lower()
    if not _DEVICE.match(choice):
        raise ModelLoadError(f"unknown device {device!r}: use auto, cpu, cuda or cuda:N")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    if choice.startswith("cuda"):
        if not torch.cuda.is_available():
            raise ModelLoadError(f"device {choice} was asked for but CUDA is not available")
        index = int(choice.partition(":")[2] or 0)
        if index >= torch.cuda.device_count():
            raise ModelLoadError(
                f"device {choice} does not exist ({torch.cuda.device_count()} CUDA device(s))"
            )
        return choice, torch.float16
    return "cpu", torch.float32


_DTYPES = ("float32", "float16", "bfloat16")


@dataclass(frozen=True, slots=True)
class DeviceReport:
    """The device a setting resolves to, and whether `auto` fell back to the CPU."""

    device: str  # cpu, cuda, cuda:N
    dtype: str  # the weights' precision there
    description: str  # one line for an operator
    fell_back_to_cpu: bool  # `auto` found no CUDA


def probe_device(device: str) -> DeviceReport:
    """Resolve `device` as `load_engine` would, without loading a model.

    Raises `ModelLoadError` when it cannot be used (no CUDA, no such GPU, unknown name).
    """
    import torch

    choice, dtype = _pick_device(device)
    precision = str(dtype).removeprefix("torch.")
    if choice == "cpu":
        cuda = "available but not chosen" if torch.cuda.is_available() else "not available"
        auto = device.strip().lower() == "auto"
        return DeviceReport(choice, precision, f"cpu ({precision}): CUDA {cuda}", auto)
    index = int(choice.partition(":")[2] or 0)
    free, total = torch.cuda.mem_get_info(index)
    gib = 1024**3
    return DeviceReport(
        choice,
        precision,
        f"{choice} {torch.cuda.get_device_name(index)} ({precision} weights), "
        f"{total / gib:.1f} GiB total, {free / gib:.1f} GiB free",
        False,
    )


def describe_device(device: str) -> str:
    """One line on the device `device` resolves to (`probe_device(device).description`)."""
    return probe_device(device).description


def _load_tokenizer(folder: Path) -> RinnaTokenizer:
    try:
        return RinnaTokenizer.from_folder(folder / "tokenizer")
    except TokenizerLoadError as exc:
        raise ModelLoadError(str(exc)) from exc


def _load_text_encoder(folder: Path, dtype: Any) -> Any:
    config = read_json(folder / "text_encoder" / "config.json", required=True)
    kinds = {config.get("model_type"), *(config.get("architectures") or [])}
    if not kinds & {"clip_text_model", "CLIPTextModel"}:
        raise ModelLoadError(
            f"text_encoder in {folder} is {config.get('model_type') or 'unknown'}, "
            "expected a CLIP text model (CLIPTextModel)"
        )
    from transformers import CLIPTextModel

    return _component("text_encoder", folder, CLIPTextModel, dtype=dtype)


def _load_safety(
    folder: Path, index: dict[str, Any], dtype: Any, *, wanted: bool
) -> tuple[Any, Any]:
    """The safety checker and its image processor, or (None, None) when off or absent."""
    if not wanted:
        log.info("safety checker disabled by setting")
        return None, None
    listed = index.get("safety_checker")
    if not (folder / "safety_checker").is_dir() or not listed or listed == [None, None]:
        log.warning("%s has no safety checker; images will not be checked", folder)
        return None, None
    from diffusers.pipelines.stable_diffusion.safety_checker import StableDiffusionSafetyChecker

    checker = _component("safety_checker", folder, StableDiffusionSafetyChecker, dtype=dtype)
    return checker, _load_feature_extractor(folder)


def _load_feature_extractor(folder: Path) -> Any:
    """A CLIPImageProcessor from `preprocessor_config.json` (the checkpoint names the old class)."""
    import transformers

    # transformers 5 splits the PIL implementation out; 4.x has only CLIPImageProcessor.
    cls = getattr(transformers, "CLIPImageProcessorPil", None) or transformers.CLIPImageProcessor
    config_file = folder / "feature_extractor" / "preprocessor_config.json"
    if not config_file.is_file():
        log.warning("%s has no feature_extractor/; using CLIP's standard preprocessing", folder)
        return cls()
    config = read_json(config_file, required=True)
    for key in ("feature_extractor_type", "image_processor_type", "processor_class"):
        config.pop(key, None)
    try:
        return cls(**config)
    except Exception as exc:
        raise ModelLoadError(f"cannot build the feature extractor: {one_line(exc)}") from exc


def _component(name: str, folder: Path, cls: Any, **kwargs: Any) -> Any:
    # Say which format to read: diffusers otherwise logs an error for every .bin-only folder.
    safetensors = any((folder / name).glob("*.safetensors"))
    try:
        model = cls.from_pretrained(folder / name, use_safetensors=safetensors, **kwargs)
    except Exception as exc:
        raise ModelLoadError(f"cannot load {name} from {folder}: {one_line(exc)}") from exc
    model.eval()
    return model
