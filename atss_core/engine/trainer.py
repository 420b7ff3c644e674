"""The iteration-based training loop. It only computes losses and steps the optimizer;
checks, logging, tracking, stop signals and checkpoints are hooks (engine/hooks.py) that the
caller builds and passes (engine/hooks.py: default_hooks)."""
import time

import torch

from atss_core.engine.accumulation import accumulate_gradients
from atss_core.engine.hooks import TrainState, default_hooks
from atss_core.engine.precision import autocast_context, make_grad_scaler
from atss_core.utils.comm import reduce_dict

STOP_KEY = "_stop_requested"


def reduce_loss_dict(loss_dict):
    """The losses averaged over the processes (the official name)."""
    return reduce_dict(loss_dict, average=True)


def do_train(model, data_loader, optimizer, scheduler, checkpointer, device, checkpoint_period, arguments, hooks=None,
             use_amp=None, clip_gradients=None, accumulate_steps=1):
    """Runs iterations arguments["iteration"] + 1 .. arguments["iteration"] + len(data_loader),
    calling each of ``hooks`` (HookBase) at the points HookBase names. ``hooks`` None: the
    default ones (default_hooks), which save with ``checkpointer`` every ``checkpoint_period``
    iterations and at the end, as the official loop does; given, they replace them, and
    ``checkpointer``/``checkpoint_period`` are not used. ``arguments`` holds
    what checkpoints save ("iteration", "seed", "grad_scaler"); ``use_amp``: an amp setting
    (engine/precision.py); ``clip_gradients``: a function of the parameters that clips their
    gradients and returns their norm (solver.make_gradient_clipper), called after the float16
    loss scale is taken out; ``accumulate_steps`` k > 1: each batch runs as k forward/backward
    passes before the step (engine/accumulation.py). Returns the TrainState (its ``meters`` hold the smoothed losses).
    A hook ends training early by raising (e.g. TrainingStopped)."""
    if hooks is None:
        if checkpointer is None:
            raise ValueError("do_train needs a checkpointer for its default hooks, or the hooks to run")
        hooks = default_hooks(checkpointer, checkpoint_period)
    start_iter = arguments["iteration"]
    model.train()
    scaler = make_grad_scaler(use_amp)
    if scaler.is_enabled() and arguments.get("grad_scaler"):
        scaler.load_state_dict(arguments["grad_scaler"])  # a resumed float16 run keeps its loss scale
    state = TrainState(model, device, arguments, start_iter, start_iter + len(data_loader), scaler)
    started = []  # hooks whose before_train ran: only they are wound down
    try:
        for hook in hooks:
            hook.before_train(state)
            started.append(hook)
        end = time.time()
        for iteration, (images, targets, _) in enumerate(data_loader, start_iter + 1):
            state.data_time = time.time() - end
            state.iteration = arguments["iteration"] = iteration
            images = images.to(device)
            targets = [target.to(device) for target in targets]
            if accumulate_steps > 1:  # the backward passes run here, before the hooks see the losses
                optimizer.zero_grad()
                loss_dict = accumulate_gradients(model, images, targets, accumulate_steps, scaler, use_amp)
            else:
                with autocast_context(use_amp):
                    loss_dict = model(images, targets)
                loss_dict = {k: v.float() for k, v in loss_dict.items()}
            losses = sum(loss_dict.values())
            # averaged over processes, so that every process takes the same decisions; whether
            # a stop signal reached this process rides along
            received = float(state.signal_received is not None)
            reduced = reduce_dict(dict({k: v.detach() for k, v in loss_dict.items()},
                                       **{STOP_KEY: torch.tensor(received, device=losses.device)}))
            state.stop_requested = float(reduced.pop(STOP_KEY)) > 0
            state.losses = reduced
            for hook in hooks:
                hook.after_loss(state)
            if accumulate_steps == 1:
                optimizer.zero_grad()
                scaler.scale(losses).backward()
            state.lr = optimizer.param_groups[0]["lr"]  # the rate this iteration used
            if clip_gradients is not None:
                scaler.unscale_(optimizer)  # clip the true gradients, not the float16-scaled ones
                state.grad_norm = clip_gradients(model.parameters())
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()
            state.step_time = time.time() - end
            end = time.time()
            for hook in hooks:
                hook.after_step(state)
    finally:
        for hook in started:
            hook.after_train(state)
    return state
