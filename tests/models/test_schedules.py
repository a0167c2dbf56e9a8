"""Schedules and weight averaging sized as fractions of training or in epochs, so one config works at any dataset
size: the warm-up + cosine schedule and the EMA half-life follow the run's own steps per epoch."""
from __future__ import annotations

import math

import pytest
import torch

from kwslab.averaging import EMA
from kwslab.fit import main
from kwslab.models.schedules import WarmupCosine
from tests.support.keyword_task import tiny_config


def _lrs(total: int, **kwargs) -> list[float]:
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=2.0)
    sched = WarmupCosine(opt, **kwargs)
    sched.set_total_steps(total)
    out = []
    for _ in range(total):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_warmup_then_cosine_follows_the_fraction_of_training_not_the_step_count():
    short, long = _lrs(40, warmup=0.1, final=0.05), _lrs(400, warmup=0.1, final=0.05)
    for lrs, total in ((short, 40), (long, 400)):
        warm = int(0.1 * total)
        assert all(a < b for a, b in zip(lrs[:warm], lrs[1:warm + 1]))  # rising through the warm-up
        assert max(lrs) == pytest.approx(2.0, rel=1e-6) and lrs.index(max(lrs)) == warm
        assert all(a >= b for a, b in zip(lrs[warm:], lrs[warm + 1:]))  # then never rising
        assert lrs[-1] == pytest.approx(2.0 * (0.05 + 0.95 * 0.5 * (1 + math.cos(math.pi * (total - 1 - warm)
                                                                               / (total - warm)))))
    for fraction in (0.25, 0.5, 0.75, 0.99):  # after the warm-up, the same share of training gives the same rate
        assert short[int(fraction * 40)] == pytest.approx(long[int(fraction * 400)], abs=0.05)


@pytest.mark.parametrize("kwargs, match", [({"warmup": 1.0}, "warmup"), ({"final": -0.1}, "final")])
def test_bad_schedule_values_name_the_field(kwargs, match):
    opt = torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=1.0)
    with pytest.raises(ValueError, match=match):
        WarmupCosine(opt, **kwargs)


def test_ema_decay_for_a_half_life_in_epochs():
    assert EMA.decay_for(1.0, 11) ** 11 == pytest.approx(0.5)
    assert EMA.decay_for(2.0, 330) ** 660 == pytest.approx(0.5)
    with pytest.raises(ValueError, match="half_life_epochs"):
        EMA(half_life_epochs=0)


@pytest.mark.slow
def test_fit_sizes_the_schedule_and_the_average_from_its_own_steps(tiny_data, tmp_path):
    cli = main(["--config", str(tiny_config(tiny_data, tmp_path, epochs=3)), "--test=false",
                "--model.scheduler=kwslab.models.schedules.WarmupCosine",
                "--model.scheduler.init_args.warmup=0.2", "--model.scheduler.init_args.final=0.1",
                "--trainer.callbacks+=kwslab.averaging.EMA",
                "--trainer.callbacks.half_life_epochs=0.5"])
    steps_per_epoch = cli.trainer.num_training_batches
    config = cli.trainer.lr_scheduler_configs[0]
    assert config.interval == "step" and config.scheduler.total_steps == 3 * steps_per_epoch
    assert config.scheduler.last_epoch == 3 * steps_per_epoch  # stepped once per optimizer step
    ema = next(cb for cb in cli.trainer.callbacks if isinstance(cb, EMA))
    assert ema.decay ** (0.5 * steps_per_epoch) == pytest.approx(0.5)
