"""Provenance of `case*.npy`: the original pipeline (diffusers 0.8.1, transformers 4.25.1).

rinna's pipeline is plain `StableDiffusionPipeline` with the tokenizer set to lower-case and
77 tokens. Run in a separate venv with `torch==2.13.0 diffusers==0.8.1 transformers==4.25.1
sentencepiece scipy "numpy<2" "huggingface_hub<0.26"` (the tests never need them):
    python make_cases.py
It first regenerates the shipped reference images (they matched to 3e-6), then writes
`case{i}.npy` (output_type="np", float32 in [0, 1]) for each entry of `cases.json`.
"""

import json
from pathlib import Path

import numpy as np
import torch
from diffusers import LMSDiscreteScheduler, StableDiffusionPipeline
from transformers import T5Tokenizer

HERE = Path(__file__).resolve().parent
REFERENCE = HERE.parents[2] / "reference"
MODEL = REFERENCE / "tiny-pokemon-ja"


def main() -> None:
    tok = T5Tokenizer.from_pretrained(MODEL / "tokenizer")
    tok.do_lower_case = True
    tok.model_max_length = 77
    scheduler = LMSDiscreteScheduler(
        beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear", num_train_timesteps=1000
    )
    pipe = StableDiffusionPipeline.from_pretrained(
        MODEL, tokenizer=tok, scheduler=scheduler, safety_checker=None
    )

    def run(case: dict) -> np.ndarray:
        return pipe(
            case["prompt"],
            negative_prompt=case["negative_prompt"],
            num_inference_steps=case["steps"],
            guidance_scale=case["guidance"],
            height=case["height"],
            width=case["width"],
            generator=torch.Generator("cpu").manual_seed(case["seed"]),
            output_type="np",
        ).images[0]

    for case in json.loads((REFERENCE / "images" / "cases.json").read_text("utf-8")):
        shipped = np.load(REFERENCE / "images" / case["file"].replace(".png", ".npy"))
        assert np.abs(run(case) - shipped).max() < 1e-5, case
    for i, case in enumerate(json.loads((HERE / "cases.json").read_text("utf-8"))):
        np.save(HERE / f"case{i}.npy", run(case).astype(np.float32))


if __name__ == "__main__":
    main()
