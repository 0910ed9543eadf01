"""make_scheduler: the cached LMS is diffusers' LMS bit for bit, minus the per-step integration."""

from __future__ import annotations

import pytest
import torch
from diffusers import DPMSolverMultistepScheduler, LMSDiscreteScheduler
from diffusers.schedulers import scheduling_lms_discrete

from generation.schedulers import MODEL_CARD_BETAS, make_scheduler
from generation.types import SCHEDULERS


def run_schedule(scheduler, steps: int, seed: int = 0) -> torch.Tensor:
    """Denoise fixed latents with a fixed fake 'model' (a deterministic function of the input)."""
    generator = torch.Generator("cpu").manual_seed(seed)
    latents = torch.randn((2, 4, 8, 8), generator=generator) * scheduler.init_noise_sigma
    noise = torch.randn((steps, 2, 4, 8, 8), generator=generator)
    scheduler.set_timesteps(steps)
    for i, t in enumerate(scheduler.timesteps):
        model_input = scheduler.scale_model_input(latents, t)
        model_output = 0.5 * model_input + 0.1 * noise[i]
        latents = scheduler.step(model_output, t, latents).prev_sample
    return latents


@pytest.mark.parametrize("steps", [1, 4, 25])
def test_lms_output_equals_diffusers_lms_over_a_full_schedule(steps):
    ours = run_schedule(make_scheduler("lms", {}), steps)
    theirs = run_schedule(LMSDiscreteScheduler(**MODEL_CARD_BETAS), steps)
    assert torch.equal(ours, theirs)


def test_lms_second_job_with_same_steps_reuses_coefficients_and_still_matches():
    scheduler = make_scheduler("lms", {})
    first = run_schedule(scheduler, 10, seed=1)
    run_schedule(scheduler, 7, seed=2)  # another schedule in between
    second = run_schedule(scheduler, 10, seed=1)
    assert torch.equal(first, second)
    assert torch.equal(first, run_schedule(LMSDiscreteScheduler(**MODEL_CARD_BETAS), 10, seed=1))


def test_lms_integrates_only_in_set_timesteps_never_during_steps(monkeypatch):
    calls = {"n": 0}
    real_quad = scheduling_lms_discrete.integrate.quad

    def counting_quad(*args, **kwargs):
        calls["n"] += 1
        return real_quad(*args, **kwargs)

    monkeypatch.setattr(scheduling_lms_discrete.integrate, "quad", counting_quad)
    scheduler = make_scheduler("lms", {})
    scheduler.set_timesteps(12)
    assert calls["n"] > 0, "set_timesteps should integrate the coefficient table"
    calls["n"] = 0
    latents = torch.zeros((1, 4, 8, 8))
    for t in scheduler.timesteps:
        scheduler.scale_model_input(latents, t)
        latents = scheduler.step(torch.ones_like(latents), t, latents).prev_sample
    assert calls["n"] == 0
    scheduler.set_timesteps(12)
    assert calls["n"] == 0, "the same schedule again must reuse the table"


def test_lms_uses_the_model_card_noise_schedule():
    config = make_scheduler("lms", {"beta_start": 0.5, "beta_end": 0.9}).config
    assert (config.beta_start, config.beta_end) == (0.00085, 0.012)
    assert config.beta_schedule == "scaled_linear"
    assert config.num_train_timesteps == 1000
    assert config.timestep_spacing == "linspace"


def test_dpmpp_2m_is_dpm_solver_plus_plus_second_order_with_karras_sigmas():
    scheduler = make_scheduler("dpmpp-2m", {})
    assert isinstance(scheduler, DPMSolverMultistepScheduler)
    config = scheduler.config
    assert config.algorithm_type == "dpmsolver++"
    assert config.solver_order == 2
    assert config.use_karras_sigmas is True
    assert (config.beta_start, config.beta_end, config.beta_schedule) == (
        0.00085,
        0.012,
        "scaled_linear",
    )


def test_prediction_type_comes_from_the_checkpoint_config():
    for name in SCHEDULERS:
        scheduler = make_scheduler(name, {"prediction_type": "v_prediction"})
        assert scheduler.config.prediction_type == "v_prediction"


def test_unknown_scheduler_name_is_value_error_listing_the_names():
    with pytest.raises(ValueError, match=r"unknown scheduler 'euler'.*dpmpp-2m, lms"):
        make_scheduler("euler", {})
