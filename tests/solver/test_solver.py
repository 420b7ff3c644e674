import pytest
import torch
from torch import nn

from atss_core.config import cfg as default_cfg
from atss_core.layers import DFConv2d
from atss_core.solver import WarmupMultiStepLR, make_lr_scheduler, make_optimizer


def lrs_over(scheduler, optimizer, iterations):
    values = []
    for _ in range(iterations):
        values.append(optimizer.param_groups[0]["lr"])
        optimizer.step()
        scheduler.step()
    return values


def test_linear_warmup_then_steps():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    scheduler = WarmupMultiStepLR(optimizer, [6, 8], gamma=0.1, warmup_factor=1.0 / 3, warmup_iters=4)
    values = lrs_over(scheduler, optimizer, 10)  # iterations 1..10 run at the schedule of 0..9
    expected = [0.01 * (1 / 3 * (1 - a) + a) for a in (0.0, 0.25, 0.5, 0.75)] + [0.01, 0.01, 0.001, 0.001, 0.0001,
                                                                                0.0001]
    assert values == pytest.approx(expected)


def test_constant_warmup_and_bad_settings():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    scheduler = WarmupMultiStepLR(optimizer, [3], warmup_factor=0.5, warmup_iters=2, warmup_method="constant")
    assert lrs_over(scheduler, optimizer, 4) == pytest.approx([0.5, 0.5, 1.0, 0.1])
    with pytest.raises(ValueError, match="increasing"):
        WarmupMultiStepLR(optimizer, [5, 3])
    with pytest.raises(ValueError, match="WARMUP_METHOD"):
        WarmupMultiStepLR(optimizer, [3], warmup_method="cosine")


def test_scheduler_state_round_trips():
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    scheduler = WarmupMultiStepLR(optimizer, [3], warmup_iters=2)
    lrs_over(scheduler, optimizer, 5)
    other_opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.01)
    other = WarmupMultiStepLR(other_opt, [3], warmup_iters=2)
    other.load_state_dict(scheduler.state_dict())
    assert other.last_epoch == 5 and other.get_lr() == pytest.approx(scheduler.get_lr())


def test_optimizer_groups_follow_the_official_rules():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["SOLVER.BASE_LR", 0.01, "SOLVER.BIAS_LR_FACTOR", 2, "SOLVER.WEIGHT_DECAY", 1e-4,
                         "SOLVER.WEIGHT_DECAY_BIAS", 0, "SOLVER.DCONV_OFFSETS_LR_FACTOR", 0.5])
    model = nn.Sequential(nn.Conv2d(4, 4, 3), DFConv2d(4, 4, with_modulated_dcn=True, bias=True))
    model[0].weight.requires_grad_(False)
    optimizer = make_optimizer(cfg, model)
    by_param = {id(g["params"][0]): (g["lr"], g["weight_decay"]) for g in optimizer.param_groups}
    assert id(model[0].weight) not in by_param  # frozen: left out
    assert by_param[id(model[0].bias)] == (0.02, 0.0)
    assert by_param[id(model[1].offset.weight)] == (0.005, 1e-4)
    assert by_param[id(model[1].offset.bias)] == (0.01, 0.0)
    assert by_param[id(model[1].conv.weight)] == (0.01, 1e-4)
    assert optimizer.defaults["momentum"] == 0.9
    scheduler = make_lr_scheduler(cfg, optimizer)
    assert scheduler.milestones == [30000] and scheduler.warmup_iters == 500
