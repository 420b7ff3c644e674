"""The recipe switches of a training run: gradient accumulation, clipping, the moving average of
the weights, AdamW and the cosine schedule, and the start-up block that names them."""
import copy

import pytest
import torch
from torch import nn

from atss_core.config import cfg as default_cfg
from atss_core.engine.accumulation import accumulate_gradients, split_batch
from atss_core.engine.defaults import describe_recipe
from atss_core.engine.ema import ModelEMA
from atss_core.modeling.detector import build_detection_model
from atss_core.solver import WarmupCosineLR, make_gradient_clipper, make_lr_scheduler, make_optimizer
from atss_core.structures import BoxList, to_image_list
from tests.modeling.test_training import synthetic_batch, tiny_cfg


def one_pass_gradients(model, images, targets):
    model.zero_grad()
    losses = model(images, targets)
    sum(losses.values()).backward()
    return {k: v.detach() for k, v in losses.items()}, [p.grad.clone() for p in model.parameters()
                                                         if p.grad is not None]


def mixed_batch():
    """Four images of three sizes (padded to one batch), one of them without objects."""
    images, targets = synthetic_batch(seed=3, n=4)
    tensors = [images.tensors[i, :, :64, :64] for i in range(4)]
    tensors[1] = tensors[1][:, :48, :]
    shorter = BoxList(targets[1].bbox.clone(), (64, 48))
    shorter.add_field("labels", targets[1].get_field("labels"))
    targets[1] = shorter.clip_to_image(remove_empty=True)
    tensors[3] = tensors[3][:, :, :40]
    targets[3] = BoxList(torch.zeros(0, 4), (40, 64))
    targets[3].add_field("labels", torch.zeros(0, dtype=torch.int64))
    return to_image_list(tensors, size_divisible=32), targets


@pytest.mark.parametrize("positive_type", ["ATSS", "TOPK", "IoU"])
@pytest.mark.parametrize("steps", [2, 4])
def test_accumulated_step_equals_the_one_pass_step(positive_type, steps):
    """The batch run as k parts: the same losses and the same summed gradients (the loss
    normalised over the whole batch, not per part)."""
    cfg = tiny_cfg()
    # 64 channels: the head's GroupNorm(32) needs two values per group on a one-image 1x1 P7
    cfg.merge_from_list(["MODEL.ATSS.POSITIVE_TYPE", positive_type, "MODEL.RESNETS.BACKBONE_OUT_CHANNELS", 64])
    torch.manual_seed(0)
    model = build_detection_model(cfg)
    model.train()
    images, targets = mixed_batch()
    one_losses, one_grads = one_pass_gradients(model, images, targets)
    model.zero_grad()
    scaler = torch.amp.GradScaler("cpu", enabled=False)
    losses = accumulate_gradients(model, images, targets, steps, scaler)
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert set(losses) == set(one_losses)
    for name in losses:
        assert losses[name].item() == pytest.approx(one_losses[name].item(), rel=1e-5, abs=1e-7), name
    assert len(grads) == len(one_grads)
    for got, expected in zip(grads, one_grads):
        torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-6)
    assert model.rpn.loss_evaluator.batch_normalizers is None  # the one-pass path is back


def test_parts_normalised_by_their_own_counts_would_differ():
    """The check above can fail: parts normalised by their own counts give other gradients."""
    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg())
    model.train()
    images, targets = mixed_batch()
    _, one_grads = one_pass_gradients(model, images, targets)
    model.zero_grad()
    for part_images, part_targets in split_batch(images, targets, 2):
        (sum(model(part_images, part_targets).values()) / 2).backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    worst = max(((g - e).abs().max() / e.abs().max().clamp(min=1e-12)).item() for g, e in zip(grads, one_grads))
    assert worst > 1e-2


def test_accumulation_steps_must_divide_the_batch():
    images, targets = synthetic_batch(n=4)
    with pytest.raises(ValueError, match="SOLVER.ACCUMULATE_STEPS 3 must divide"):
        split_batch(images, targets, 3)


def test_the_start_up_check_refuses_a_step_count_that_does_not_divide_the_batch():
    from atss_core.engine.launch import check_batch_sizes

    cfg = default_cfg.clone()
    cfg.merge_from_list(["SOLVER.IMS_PER_BATCH", 8, "SOLVER.ACCUMULATE_STEPS", 3])
    with pytest.raises(ValueError, match="ACCUMULATE_STEPS 3 must be a positive divisor of the 4 images"):
        check_batch_sizes(cfg, 2, training=True)


@pytest.mark.parametrize("dcn", [False, True])
def test_feature_shapes_of_the_shape_only_run_match_the_real_features(dcn):
    """Deformable stages (compiled ops without meta kernels) take the one-image fallback."""
    cfg = tiny_cfg()
    if dcn:
        cfg.merge_from_list(["MODEL.RESNETS.STAGE_WITH_DCN", (False, True, True, True),
                             "MODEL.RESNETS.WITH_MODULATED_DCN", True])
    model = build_detection_model(cfg)
    model.train()
    for height, width in ((64, 64), (96, 160)):
        real = model.backbone(torch.zeros(1, 3, height, width))
        assert model.feature_shapes(height, width) == [tuple(f.shape[-2:]) for f in real]
    assert model.backbone.training


def clip_cfg(clip_type, value):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["SOLVER.CLIP_GRADIENTS.ENABLED", True, "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", clip_type,
                         "SOLVER.CLIP_GRADIENTS.CLIP_VALUE", value])
    return cfg


def big_gradients():
    torch.manual_seed(0)
    params = [nn.Parameter(torch.randn(10, 10)), nn.Parameter(torch.randn(7))]
    for p in params:
        p.grad = torch.randn_like(p) * 100
    return params


def test_norm_clipping_bounds_the_gradient_norm():
    params = big_gradients()
    before = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params]))
    reported = make_gradient_clipper(clip_cfg("norm", 5.0))(params)
    after = torch.linalg.vector_norm(torch.cat([p.grad.flatten() for p in params]))
    assert reported.item() == pytest.approx(before.item(), rel=1e-6)
    assert before > 100 and after.item() == pytest.approx(5.0, rel=1e-4)


def test_value_clipping_bounds_every_element():
    params = big_gradients()
    make_gradient_clipper(clip_cfg("value", 0.5))(params)
    assert max(p.grad.abs().max().item() for p in params) == pytest.approx(0.5)


def test_clipping_is_off_by_default_and_checks_its_settings():
    assert make_gradient_clipper(default_cfg) is None
    with pytest.raises(ValueError, match="CLIP_TYPE"):
        make_gradient_clipper(clip_cfg("full_model", 1.0))
    with pytest.raises(ValueError, match="CLIP_VALUE must be positive"):
        make_gradient_clipper(clip_cfg("norm", 0.0))


def test_training_with_clipping_steps_with_the_clipped_gradients():
    """do_train clips between backward and step: one SGD step with lr 1 moves the weights by
    exactly the clipped gradient."""
    from atss_core.engine.hooks import TrainState  # noqa: F401 (the loop's state type)
    from atss_core.engine.trainer import do_train

    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg())
    images, targets = synthetic_batch(n=2)
    before = [p.detach().clone() for p in model.parameters()]
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    clipper = make_gradient_clipper(clip_cfg("norm", 0.01))
    state = do_train(model, [(images, targets, None)], optimizer, scheduler, None, torch.device("cpu"), 0,
                     {"iteration": 0}, hooks=[], clip_gradients=clipper)
    moved = torch.linalg.vector_norm(torch.cat([(p.detach() - b).flatten() for p, b in zip(model.parameters(),
                                                                                             before)]))
    assert state.grad_norm > 0.01 and moved.item() == pytest.approx(0.01, rel=1e-3)


def test_ema_follows_the_warmed_up_decay():
    model = nn.Linear(2, 1, bias=False)
    nn.init.zeros_(model.weight)
    ema = ModelEMA(model, decay=0.9, warmup_iters=2)
    with torch.no_grad():
        model.weight.fill_(1.0)
    ema.update(model)
    d = 0.9 * (1 - torch.exp(torch.tensor(-0.5)).item())
    assert ema.weights["weight"][0, 0].item() == pytest.approx(1 - d)
    assert ema.current_decay() == pytest.approx(d)


def test_ema_resumed_from_its_saved_state_equals_the_uninterrupted_average(tmp_path):
    torch.manual_seed(0)
    model = build_detection_model(tiny_cfg())
    steps = [copy.deepcopy(model.state_dict())]
    for _ in range(6):
        with torch.no_grad():
            for p in model.parameters():
                p.add_(torch.randn_like(p) * 0.1)
        steps.append(copy.deepcopy(model.state_dict()))

    def averaged(states, ema):
        for state in states:
            model.load_state_dict(state)
            ema.update(model)
        return ema

    model.load_state_dict(steps[0])
    whole = averaged(steps[1:], ModelEMA(model, 0.99, warmup_iters=3))
    model.load_state_dict(steps[0])
    first = averaged(steps[1:4], ModelEMA(model, 0.99, warmup_iters=3))
    torch.save(first.state_dict(), tmp_path / "ema.pth")
    model.load_state_dict(steps[3])
    resumed = ModelEMA(model, 0.99, warmup_iters=3)  # a new run starts its average from the weights ...
    resumed.load_state_dict(torch.load(tmp_path / "ema.pth", weights_only=True))  # ... and continues the saved one
    averaged(steps[4:], resumed)
    assert resumed.updates == whole.updates == 6
    for name, value in whole.weights.items():
        assert torch.equal(resumed.weights[name], value), name


def test_ema_weights_are_applied_only_within_the_block():
    model = nn.Linear(2, 2)
    ema = ModelEMA(model, 0.5)
    with torch.no_grad():
        model.weight.add_(1.0)
    own = model.weight.detach().clone()
    with ema.applied_to(model) as averaged:
        assert not torch.equal(averaged.weight, own)
    assert torch.equal(model.weight, own)


def test_adamw_and_norm_weight_decay():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["SOLVER.OPTIMIZER", "AdamW", "SOLVER.BETAS", (0.8, 0.95), "SOLVER.WEIGHT_DECAY", 0.05,
                         "SOLVER.WEIGHT_DECAY_NORM", 0.0, "SOLVER.BASE_LR", 1e-3])
    model = nn.Sequential(nn.Conv2d(3, 4, 3), nn.GroupNorm(2, 4))
    optimizer = make_optimizer(cfg, model)
    assert isinstance(optimizer, torch.optim.AdamW) and optimizer.defaults["betas"] == (0.8, 0.95)
    decay = {id(g["params"][0]): g["weight_decay"] for g in optimizer.param_groups}
    assert decay[id(model[0].weight)] == 0.05 and decay[id(model[1].weight)] == 0.0
    assert decay[id(model[1].bias)] == cfg.SOLVER.WEIGHT_DECAY_BIAS
    # the default keeps the official rule: norm weights decay like every other weight
    official = make_optimizer(default_cfg, model)
    assert isinstance(official, torch.optim.SGD)
    assert {g["weight_decay"] for g in official.param_groups if g["params"][0] is model[1].weight} == {
        default_cfg.SOLVER.WEIGHT_DECAY}
    cfg.merge_from_list(["SOLVER.OPTIMIZER", "Adam"])
    with pytest.raises(ValueError, match="SOLVER.OPTIMIZER must be one of SGD, AdamW"):
        make_optimizer(cfg, model)


def test_cosine_schedule_warms_up_then_decays_to_the_end_rate():
    optimizer = torch.optim.SGD([{"params": [nn.Parameter(torch.zeros(1))], "lr": 0.1},
                                 {"params": [nn.Parameter(torch.zeros(1))], "lr": 0.2}], lr=0.1)
    scheduler = WarmupCosineLR(optimizer, max_iter=10, end_lr=0.01, base_lr=0.1, warmup_factor=0.5, warmup_iters=2)
    values = []
    for _ in range(11):
        values.append([g["lr"] for g in optimizer.param_groups])
        optimizer.step()
        scheduler.step()
    import math

    cosine = lambda t: 0.01 + 0.09 * (1 + math.cos(math.pi * t / 10)) / 2  # noqa: E731
    assert values[0][0] == pytest.approx(0.5 * cosine(0))
    assert values[1][0] == pytest.approx(0.75 * cosine(1))
    assert values[5][0] == pytest.approx(cosine(5))
    assert values[10][0] == pytest.approx(0.01)
    assert values[10][1] == pytest.approx(0.02)  # the bias group keeps its factor down to the end


def test_scheduler_names_are_checked():
    cfg = default_cfg.clone()
    cfg.merge_from_list(["SOLVER.LR_SCHEDULER_NAME", "WarmupCosineLR", "SOLVER.MAX_ITER", 10])
    optimizer = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=0.1)
    assert isinstance(make_lr_scheduler(cfg, optimizer), WarmupCosineLR)
    cfg.merge_from_list(["SOLVER.LR_SCHEDULER_NAME", "OneCycle"])
    with pytest.raises(ValueError, match="LR_SCHEDULER_NAME must be one of"):
        make_lr_scheduler(cfg, optimizer)


def test_the_start_up_block_names_each_switch():
    cfg = default_cfg.clone()
    official = describe_recipe(cfg)
    assert "SGD (momentum 0.9" in official and "WarmupMultiStepLR" in official
    for line in ("gradient clipping: off", "EMA:               off", "accumulation:      off",
                 "validation:        off", "best metric:       off",
                 "augmentation:      horizontal flip 0.5 (official)",
                 "training data:     TrainingSampler; images without objects left out; crowds dropped"):
        assert line in official
    cfg.merge_from_list(["SOLVER.OPTIMIZER", "AdamW", "SOLVER.LR_SCHEDULER_NAME", "WarmupCosineLR",
                         "SOLVER.CLIP_GRADIENTS.ENABLED", True, "SOLVER.CLIP_GRADIENTS.CLIP_TYPE", "norm",
                         "MODEL.EMA.ENABLED", True, "SOLVER.ACCUMULATE_STEPS", 2, "SOLVER.TEST_PERIOD", 500,
                         "DATASETS.VAL", ("my_val",), "SOLVER.BEST_METRIC", "AP50",
                         "INPUT.ZOOM_OUT_PROB", 0.3, "INPUT.SCALE_JITTER_RANGE", (0.1, 2.0),
                         "DATALOADER.SAMPLER_TRAIN", "RepeatFactorTrainingSampler",
                         "DATALOADER.REPEAT_THRESHOLD", 0.001,
                         "DATALOADER.FILTER_EMPTY_ANNOTATIONS", False, "MODEL.ATSS.IGNORE_CROWD", True])
    block = describe_recipe(cfg)
    for text in ("AdamW (betas (0.9, 0.999)", "WarmupCosineLR: 0.001 -> 0.0", "norm at 1.0 (L2 norm)",
                 "decay 0.9998", "2 passes of 8 images per step", "every 500 iterations on DATASETS.VAL = my_val",
                 "AP50 -> model_best.pth", "zoom out 0.3 (up to x4), scale jitter (0.1, 2.0), horizontal flip 0.5\n",
                 "RepeatFactorTrainingSampler (threshold 0.001); images without objects kept; "
                 "crowds as ignore regions"):
        assert text in block, text


def test_do_train_with_accumulation_takes_the_one_pass_step():
    """Through the loop: one SGD step (momentum, weight decay) with k = 2 and with k = 1 gives
    the same weights."""
    from atss_core.engine.trainer import do_train

    cfg = tiny_cfg()
    cfg.merge_from_list(["MODEL.RESNETS.BACKBONE_OUT_CHANNELS", 64, "SOLVER.BASE_LR", 0.01])
    images, targets = mixed_batch()
    weights = {}
    for steps in (1, 2):
        torch.manual_seed(0)
        model = build_detection_model(cfg)
        optimizer = make_optimizer(cfg, model)
        scheduler = make_lr_scheduler(cfg, optimizer)
        state = do_train(model, [(images, targets, None)], optimizer, scheduler, None, torch.device("cpu"), 0,
                         {"iteration": 0}, hooks=[], accumulate_steps=steps)
        weights[steps] = (model.state_dict(), state.loss_values())
    assert weights[1][1] == pytest.approx(weights[2][1], rel=1e-5)
    for name, value in weights[1][0].items():
        torch.testing.assert_close(weights[2][0][name], value, rtol=1e-5, atol=1e-6, msg=name)
