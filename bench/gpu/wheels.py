"""What the CUDA machine lacks, and how wheels are named: shared by prepare.py and install.py.

Standard library only (install.py runs before anything is installed there).
"""

from __future__ import annotations

import re
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
WHEEL_DIR = ROOT / ".whl"
MAX_BYTES = 40 * 1024 * 1024  # the whole working tree that travels is capped at 64 MiB
PYTHON_VERSION = "3.12"  # the CUDA machine's python3 (/opt/torch/.venv)

# Carried as wheels: what the project imports (or its tests collect) that the CUDA image lacks,
# and what those need. Versions default to the ones installed here (the tested ones); these
# pins are used where a package is not installed in the preparing environment.
CARRIED: dict[str, str] = {
    "diffusers": "0.42.1",
    "importlib-metadata": "10.2.0",  # diffusers
    "lazy-importer": "0.1.0",  # importlib-metadata on Python < 3.15
    "zipp": "4.1.2",  # importlib-metadata needs >= 3.20; the image's version is unknown
    "discord.py": "2.7.1",
    "aiosqlite": "0.22.1",
    "pydantic": "2.14.4",
    "pydantic-core": "2.50.5",  # binary: exactly the version pydantic pins
    "pydantic-settings": "2.16.3",
    "python-dotenv": "1.2.4",
    "typing-inspection": "0.4.5",
    "annotated-types": "0.8.0",
    "typing-extensions": "4.16.0",  # pydantic-core needs >= 4.16; installed there only if newer
    "pytest-asyncio": "1.5.0",  # tests/ conftests import it (asyncio_mode = auto)
}

# The CUDA image's packages (device KINDS.md, "Python packages already there", 2026-11-17).
DEVICE_PACKAGES = frozenset(
    """
    absl-py accelerate aiofiles aiohappyeyeballs aiohttp aiosignal annotated-doc anyio attrs
    botorch build certifi charset-normalizer chex click cloudpickle cmake colorama contourpy
    coverage cuda-bindings cuda-core cuda-pathfinder cuda-toolkit cupy-cuda13x cycler cython
    diffrax e3nn einops equinox etils execnet filelock flatbuffers flax fonttools formulaic
    frozenlist fsspec gpytorch grpcio h11 h5py hf-xet httpcore httpx humanize huggingface-hub
    hypothesis idna imageio iniconfig interface-meta jax jax-cuda13-pjrt jax-cuda13-plugin jaxlib
    jaxtyping jinja2 joblib kiwisolver lazy-loader lightning lightning-utilities linear-operator
    lineax llvmlite lxml markdown markdown-it-py markupsafe matplotlib mdurl meson ml-dtypes
    mpi4py mpmath msgpack multidict multipledispatch mypy-extensions nanobind narwhals networkx
    ninja numba numba-cuda numpy numpyro nvidia-ml-py onnx onnx-ir onnxruntime onnxscript
    opencv-python-headless optax opt-einsum opt-einsum-fx optimistix orbax-checkpoint packaging
    pandas pathspec patsy peft pillow pip pluggy portalocker prometheus-client propcache protobuf
    psutil pyarrow pybind11 py-cpuinfo pygments pyparsing pyproject-hooks pyre-extensions pytest
    pytest-benchmark pytest-cov pytest-mock pytest-timeout pytest-xdist python-dateutil
    pytorch-lightning pyyaml regex requests rich sacrebleu safetensors scikit-build-core
    scikit-image scikit-learn scipy seaborn sentencepiece sentence-transformers setuptools
    shellingham simplejson six sortedcontainers statsmodels sympy tabulate tensorboard
    tensorboard-data-server tensorstore threadpoolctl tifffile tiktoken timm tokenizers toolz
    torch torchaudio torchdiffeq torch-geometric torchmetrics torchvision tqdm transformers
    treescope triton typer typing-extensions typing-inspect urllib3 uvloop wadler-lindig werkzeug
    wheel wrapt xarray xxhash yarl zipp
    """.split()  # noqa: SIM905 (a list of 190 quoted names would hide the list)
)
# Versions read there (device KINDS.md, pip list, 2026-11): checked against requirements.
DEVICE_VERSIONS = {
    "accelerate": "1.15.0",
    "huggingface-hub": "1.33.0",
    "numpy": "2.5.2",
    "safetensors": "0.8.0",
    "sentencepiece": "0.2.2",
    "tokenizers": "0.23.2",
    "torch": "2.11.0",
    "transformers": "5.17.0",
}

_WHEEL_NAME = re.compile(r"^(?P<name>[^-]+)-(?P<version>[^-]+)(-\d[^-]*)?-[^-]+-[^-]+-[^-]+\.whl$")


def normalize(name: str) -> str:
    """PEP 503 normalized project name: `Discord.py` and `discord_py` are `discord-py`."""
    return re.sub(r"[-_.]+", "-", name).lower()


def parse_wheel_name(path: Path) -> tuple[str, str]:
    """(normalized name, version) from a wheel's file name; ValueError if it is not one."""
    match = _WHEEL_NAME.match(path.name)
    if match is None:
        raise ValueError(f"{path.name} is not a wheel file name")
    return normalize(match["name"]), match["version"]


def wheels(folder: Path = WHEEL_DIR) -> list[Path]:
    return sorted(folder.glob("*.whl")) if folder.is_dir() else []


def requires_dist(path: Path) -> list[str]:
    """The wheel's Requires-Dist lines (markers included), read from its METADATA."""
    with zipfile.ZipFile(path) as archive:
        name = next(n for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
        lines = archive.read(name).decode("utf-8").splitlines()
    return [line.partition(":")[2].strip() for line in lines if line.startswith("Requires-Dist:")]
