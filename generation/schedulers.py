"""The samplers a user can pick: `lms` (the model card's) and `dpmpp-2m` (fewer steps, same look).

Both use the model card's noise schedule (`beta_start=0.00085, beta_end=0.012,
beta_schedule="scaled_linear", num_train_timesteps=1000`), which is also what the published
`scheduler/scheduler_config.json` says.
"""

from __future__ import annotations

import functools
from collections import OrderedDict
from collections.abc import Mapping
from typing import Any, Literal, cast

from generation.types import SCHEDULERS

# The model card constructs its LMS scheduler with exactly these arguments.
MODEL_CARD_BETAS: dict[str, Any] = {
    "beta_start": 0.00085,
    "beta_end": 0.012,
    "beta_schedule": "scaled_linear",
    "num_train_timesteps": 1000,
}
_LMS_ORDER = 4  # diffusers' default `order` for LMSDiscreteScheduler.step
_CACHE_SIZE = 16  # distinct step counts whose coefficient tables are kept


def make_scheduler(name: str, config: Mapping[str, Any] | None = None) -> Any:
    """Build the scheduler called `name` (one of `SCHEDULERS`).

    `config` is the checkpoint's scheduler config; only its `prediction_type` is used (the
    noise schedule is the model card's).
    """
    # Passed through as the checkpoint says; diffusers rejects a type it does not know.
    prediction_type = cast(
        "Literal['epsilon', 'sample', 'v_prediction', 'flow_prediction']",
        str((config or {}).get("prediction_type") or "epsilon"),
    )
    if name == "lms":
        return _cached_lms_class()(**MODEL_CARD_BETAS, prediction_type=prediction_type)
    if name == "dpmpp-2m":
        # diffusers' lazy `__init__` re-exports without `__all__`, so pyright calls this public,
        # documented import private; the same below and in the loader.
        from diffusers import DPMSolverMultistepScheduler  # pyright: ignore[reportPrivateImportUsage]

        return DPMSolverMultistepScheduler(
            **MODEL_CARD_BETAS,
            prediction_type=prediction_type,
            algorithm_type="dpmsolver++",
            solver_order=2,
            use_karras_sigmas=True,
        )
    raise ValueError(f"unknown scheduler {name!r}; choose one of: {', '.join(SCHEDULERS)}")


@functools.cache
def _cached_lms_class() -> type:
    """`CachedLMSDiscreteScheduler`, defined on first use so importing this module stays torch-free."""
    from diffusers import LMSDiscreteScheduler  # pyright: ignore[reportPrivateImportUsage]

    class CachedLMSDiscreteScheduler(LMSDiscreteScheduler):
        """diffusers' LMS with its coefficients integrated once per schedule, not at every step.

        `LMSDiscreteScheduler.step` calls `scipy.integrate.quad` for each coefficient of each
        step (milliseconds of CPU per step). The coefficients depend only on the sigmas, so
        `set_timesteps` computes the whole table once, with diffusers' own integration (so
        the values are bit-identical), and keeps it for the next job with the same step count.
        """

        def __init__(self, *args: Any, **kwargs: Any) -> None:
            super().__init__(*args, **kwargs)
            self._coefficients: dict[tuple[int, int, int], float] = {}
            self._tables: OrderedDict[tuple[float, ...], dict[tuple[int, int, int], float]] = (
                OrderedDict()
            )

        def set_timesteps(self, num_inference_steps: int, device: Any = None) -> None:
            super().set_timesteps(num_inference_steps, device=device)
            tables = getattr(self, "_tables", None)
            if tables is None:
                # Called from the base __init__ with 1000 training steps: nothing to integrate.
                return
            # torch's stubs type `tolist()` as a bare `list`; a 1-D float tensor gives floats.
            sigmas = cast("list[float]", self.sigmas.tolist())  # pyright: ignore[reportUnknownMemberType]
            key = tuple(sigmas)
            table = tables.get(key)
            if table is None:
                table = {}
                for t in range(num_inference_steps):
                    order = min(t + 1, _LMS_ORDER)
                    for current in range(order):
                        table[(order, t, current)] = super().get_lms_coefficient(order, t, current)
                tables[key] = table
                while len(tables) > _CACHE_SIZE:
                    tables.popitem(last=False)
            else:
                tables.move_to_end(key)
            self._coefficients = table

        def get_lms_coefficient(self, order: int, t: int, current_order: int) -> float:
            key = (order, t, current_order)
            value = self._coefficients.get(key)
            if value is None:
                # A caller passing a non-default `order` to step(): integrate once, then keep.
                value = super().get_lms_coefficient(order, t, current_order)
                self._coefficients[key] = value
            return value

    return CachedLMSDiscreteScheduler
