"""Trainer callbacks of the SFT entry point: dropped-sample limit, time budget, a progress bar that follows it.

* :class:`BadSampleCallback`: at every step end all ranks sum their dropped-sample counts and stop together with
  the same :class:`~unifiedreward.data.sft.BadDataError` when ``--max_bad_fraction`` is exceeded; the final check
  (any number of samples tried) runs when training ends.
* :class:`TimeBudgetCallback`: ``--max_train_minutes``: stop after that much wall time (all ranks at the same step),
  with an optional linear learning-rate cooldown over the last fraction of the time.
* :class:`BudgetProgressCallback`: the progress bar counts seconds of the time budget (total = the budget, so its
  ETA is the time the run will really take) instead of ``max_steps``, with the step count beside it.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

from tqdm.auto import tqdm
from transformers import TrainerCallback
from transformers.trainer_callback import ProgressCallback

from unifiedreward.training.sync import agree_on_bad_fraction, any_rank

__all__ = ["BadSampleCallback", "BudgetProgressCallback", "TimeBudgetCallback"]

logger = logging.getLogger(__name__)


def _device(args: Any) -> Any:
    """The device of this rank's collectives: its accelerator, or the CPU (gloo)."""
    device = getattr(args, "device", None)
    return device if device is not None and getattr(device, "type", "cpu") != "mps" else "cpu"


class BadSampleCallback(TrainerCallback):
    """Stop every rank together when the dropped fraction exceeds ``max_bad_fraction`` (see the module docstring).

    Args:
        dataset: the :class:`~unifiedreward.data.sft.SupervisedDataset` (built with ``stop_in_getitem=False``).
        reduce: replaces the all-reduce (tests), see :func:`~unifiedreward.training.sync.agree_on_bad_fraction`.
    """

    def __init__(self, dataset: Any, *, reduce: Callable[..., list[int]] | None = None):
        self.dataset = dataset
        self.reduce = reduce

    def _check(self, args: Any, *, final: bool) -> None:
        from unifiedreward.data.sft import BadDataError

        message = agree_on_bad_fraction(self.dataset, final=final, device=_device(args), reduce=self.reduce)
        if message is not None:
            raise BadDataError(message)

    def on_step_end(self, args, state, control, **kwargs):
        self._check(args, final=False)

    def on_train_end(self, args, state, control, **kwargs):
        self._check(args, final=True)


class TimeBudgetCallback(TrainerCallback):
    """End training after ``minutes`` of wall time, on all ranks at the same step.

    The scheduler cannot know how many steps fit in the budget, so the last ``cooldown`` fraction of the *time* is a
    linear learning-rate cooldown to 0 (a warmup-stable-decay schedule): after each step the scheduler's learning
    rate is multiplied by ``min(1, (1 - t) / cooldown)``, ``t`` the elapsed fraction of the budget.

    Args:
        minutes: the budget (> 0).
        cooldown: fraction of the budget for the cooldown (0: none).
        clock: seconds, monotonic (tests inject one).
        reduce: replaces the all-reduce of the stop flag (tests).

    Attributes:
        time_budget_seconds: the budget in seconds (read by :class:`BudgetProgressCallback`).
    """

    def __init__(
        self,
        minutes: float,
        *,
        cooldown: float = 0.0,
        clock: Callable[[], float] = time.monotonic,
        reduce: Callable[..., list[int]] | None = None,
    ):
        if minutes <= 0:
            raise ValueError(f"the time budget must be > 0 minutes, got {minutes}")
        if not 0 <= cooldown < 1:
            raise ValueError(f"the cooldown fraction must be in [0, 1), got {cooldown}")
        self.time_budget_seconds = 60.0 * minutes
        self.cooldown = cooldown
        self.clock = clock
        self.reduce = reduce
        self.start: float | None = None

    def on_train_begin(self, args, state, control, **kwargs):
        self.start = self.clock()

    def on_step_end(self, args, state, control, optimizer=None, **kwargs):
        elapsed = self.clock() - (self.start if self.start is not None else self.clock())
        if any_rank(elapsed >= self.time_budget_seconds, device=_device(args), reduce=self.reduce):
            logger.info("time budget of %.4g min reached at step %d", self.time_budget_seconds / 60, state.global_step)
            control.should_training_stop = True
            control.should_log = True
            return control
        left = 1.0 - elapsed / self.time_budget_seconds
        if self.cooldown > 0 and optimizer is not None and left < self.cooldown:
            for group in optimizer.param_groups:  # the scheduler sets lr from its base at every step
                group["lr"] *= left / self.cooldown
        return control


class BudgetProgressCallback(ProgressCallback):
    """:class:`~transformers.trainer_callback.ProgressCallback` whose training bar counts the time budget.

    With ``time_budget_seconds`` the bar's total is the budget in seconds and it advances with the elapsed time
    (capped at the total), so its remaining time is what the run will use; the postfix shows
    ``step N/max_steps``. Without a budget it is the stock bar (total ``max_steps``).

    Args:
        time_budget_seconds: the budget, or ``None``.
        clock: seconds, monotonic (tests inject one).
    """

    def __init__(self, time_budget_seconds: float | None = None, *, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self.time_budget_seconds = time_budget_seconds
        self.clock = clock
        self.start = 0.0

    def on_train_begin(self, args, state, control, **kwargs):
        if self.time_budget_seconds is None:
            return super().on_train_begin(args, state, control, **kwargs)
        self.start = self.clock()
        self.current_step = 0
        if state.is_world_process_zero:
            self.training_bar = tqdm(
                total=round(self.time_budget_seconds),
                unit="s",
                dynamic_ncols=True,
                desc="training (time budget)",
                bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]",
            )
            self.training_bar.set_postfix_str(f"step 0/{state.max_steps}", refresh=False)

    def on_step_end(self, args, state, control, **kwargs):
        if self.time_budget_seconds is None:
            return super().on_step_end(args, state, control, **kwargs)
        self.current_step = state.global_step
        bar = self.training_bar
        if state.is_world_process_zero and bar is not None:
            elapsed = min(float(bar.total), self.clock() - self.start)
            bar.set_postfix_str(f"step {state.global_step}/{state.max_steps}", refresh=False)
            bar.update(elapsed - bar.n)
