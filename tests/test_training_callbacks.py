"""Training callbacks (unifiedreward.training.callbacks, .sync): a stop agreed across ranks, the time-budget bar."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from types import SimpleNamespace

import pytest
import torch

from unifiedreward.data.sft import BadDataError
from unifiedreward.training.callbacks import BadSampleCallback, BudgetProgressCallback, TimeBudgetCallback
from unifiedreward.training.sync import agree_on_bad_fraction

pytestmark = pytest.mark.unit

KEYS = ("tried", "ok", "dropped", "media", "over-length", "invalid")


class FakeDataset:
    """The part of SupervisedDataset the agreement reads: counts of one rank."""

    def __init__(self, tried: int, dropped: int, *, max_bad_fraction: float = 0.1, min_samples: int = 4):
        self._counts = dict.fromkeys(KEYS, 0) | {"tried": tried, "ok": tried - dropped, "dropped": dropped}
        self._counts["media"] = dropped
        self.max_bad_fraction = max_bad_fraction
        self.min_samples = min_samples

    def counts(self):
        return dict(self._counts)

    def bad_fraction_exceeded(self, counts, *, min_samples, final=False):
        from unifiedreward.data.sft import SupervisedDataset

        return SupervisedDataset.bad_fraction_exceeded(self, counts, min_samples=min_samples, final=final)


def _summing_with(*others: FakeDataset):
    """An all-reduce stand-in: this rank's values plus the other ranks' (sum or max)."""

    def reduce(values, op):
        rows = [list(values)] + [[o.counts()[k] for k in KEYS] + [o.min_samples] for o in others]
        if op == "max":
            rows = [list(values)] + [[0] * len(values) for _ in others]
            return [max(column) for column in zip(*rows, strict=True)]
        return [sum(column) for column in zip(*rows, strict=True)]

    return reduce


def test_bad_fraction_is_judged_on_the_counts_of_all_ranks():
    bad, good = FakeDataset(tried=4, dropped=3), FakeDataset(tried=40, dropped=0)
    # alone, rank 0 would stop (3/4); with rank 1's counts the fraction is 3/44 < 0.1: both ranks go on
    assert agree_on_bad_fraction(bad) is not None
    assert agree_on_bad_fraction(bad, reduce=_summing_with(good)) is None
    assert agree_on_bad_fraction(good, reduce=_summing_with(bad)) is None
    # 3 + 3 of 8: both ranks stop, with the same message
    messages = {agree_on_bad_fraction(bad, reduce=_summing_with(FakeDataset(4, 3))) for _ in range(2)}
    (message,) = messages
    assert "6 of the 8 samples" in message and "max_bad_fraction=0.1" in message


def test_bad_fraction_min_samples_is_summed_and_final_check_ignores_it():
    few = FakeDataset(tried=2, dropped=1, min_samples=4)
    assert agree_on_bad_fraction(few, reduce=_summing_with(FakeDataset(2, 1, min_samples=4))) is None  # 4 < 8
    assert agree_on_bad_fraction(few, final=True, reduce=_summing_with(FakeDataset(2, 1))) is not None


def test_bad_sample_callback_raises_at_step_end_and_at_train_end():
    args, state, control = SimpleNamespace(device=torch.device("cpu")), SimpleNamespace(), SimpleNamespace()
    callback = BadSampleCallback(FakeDataset(tried=2, dropped=1, min_samples=4))
    callback.on_step_end(args, state, control)  # too few samples tried for the periodic check
    with pytest.raises(BadDataError, match="1 of the 2 samples"):
        callback.on_train_end(args, state, control)  # the final check (was never run before)


_RANK_SCRIPT = """
import json, sys
import torch.distributed as dist
from unifiedreward.training.sync import agree_on_bad_fraction

rank, port = int(sys.argv[1]), int(sys.argv[2])
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)

class Rank:  # rank 0 dropped 3 of 4 samples, rank 1 none of 4: 3 of 8 overall, above 0.1
    max_bad_fraction, min_samples = 0.1, 4
    def counts(self):
        dropped = 3 if rank == 0 else 0
        return {"tried": 4, "ok": 4 - dropped, "dropped": dropped, "media": dropped, "over-length": 0, "invalid": 0}
    def bad_fraction_exceeded(self, counts, *, min_samples, final=False):
        return counts["tried"] >= min_samples and counts["dropped"] / counts["tried"] > self.max_bad_fraction

print(json.dumps(agree_on_bad_fraction(Rank())))
dist.destroy_process_group()
"""


@pytest.mark.smoke
def test_two_gloo_ranks_agree_on_the_stop():
    """Two real processes over gloo (torch only, no transformers import): the same stop message on both ranks."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    ranks = [
        subprocess.Popen(
            [sys.executable, "-c", _RANK_SCRIPT, str(rank), str(port)],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
        )
        for rank in range(2)
    ]
    outputs = [process.communicate(timeout=120) for process in ranks]
    assert all(process.returncode == 0 for process in ranks), [err[-2000:] for _, err in outputs]
    results = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
    assert results[0] is not None and results[0] == results[1]
    assert "3 of the 8 samples" in results[0]


def test_progress_bar_counts_the_time_budget_not_max_steps():
    now = [100.0]
    bar = BudgetProgressCallback(600.0, clock=lambda: now[0])
    args = SimpleNamespace()
    state = SimpleNamespace(is_world_process_zero=True, max_steps=20000, global_step=0)
    bar.on_train_begin(args, state, None)
    assert bar.training_bar.total == 600  # seconds of budget, not 20,000 steps
    now[0], state.global_step = 250.0, 37
    bar.on_step_end(args, state, None)
    assert bar.training_bar.n == pytest.approx(150.0)
    assert "step 37/20000" in str(bar.training_bar)
    assert "/600 s" in str(bar.training_bar)
    now[0] = 900.0  # past the budget: the bar is full, not beyond
    bar.on_step_end(args, state, None)
    assert bar.training_bar.n == pytest.approx(600.0)
    bar.on_train_end(args, state, None)
    plain = BudgetProgressCallback(None)
    plain.on_train_begin(args, state, None)
    assert plain.training_bar.total == 20000
    plain.on_train_end(args, state, None)


def test_time_budget_stops_when_any_rank_is_out_of_time_and_cools_down():
    now = [0.0]
    args, state = SimpleNamespace(device=torch.device("cpu")), SimpleNamespace(global_step=5)
    optimizer = SimpleNamespace(param_groups=[{"lr": 1.0}])
    budget = TimeBudgetCallback(1.0, cooldown=0.5, clock=lambda: now[0], reduce=lambda v, op: list(v))
    budget.on_train_begin(args, state, None)
    now[0] = 45.0  # 25% of the budget left: half of the cooldown -> lr x 0.5
    control = budget.on_step_end(args, state, SimpleNamespace(should_training_stop=False), optimizer=optimizer)
    assert not control.should_training_stop and optimizer.param_groups[0]["lr"] == pytest.approx(0.5)
    # this rank has time left, another rank does not: stop here too
    budget.reduce = lambda values, op: [1] if op == "max" else list(values)
    control = budget.on_step_end(args, state, SimpleNamespace(should_training_stop=False, should_log=False))
    assert control.should_training_stop
