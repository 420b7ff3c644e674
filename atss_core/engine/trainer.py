"""The iteration-based training loop."""
import datetime
import logging
import resource
import signal
import time

import torch
from tqdm import tqdm

from atss_core.engine.precision import autocast_context, make_grad_scaler
from atss_core.engine.stop_signals import StopRequest
from atss_core.utils.comm import get_rank, get_world_size, reduce_dict
from atss_core.utils.metric_logger import MetricLogger


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024.0 / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


STOP_KEY = "_stop_requested"


def check_losses_finite(losses, iteration, checkpointer):
    """A NaN or inf loss stops training before it reaches the weights; the message names the
    loss term and the checkpoint a new run would resume from."""
    bad = [name for name, value in losses.items() if not torch.isfinite(value)]
    if not bad:
        return
    values = ", ".join("{} {:.4g}".format(name, float(value)) for name, value in losses.items())
    if checkpointer.has_checkpoint():
        resume = "the last good checkpoint, {}, is kept and a new run resumes from it".format(
            checkpointer.get_checkpoint_file())
    else:
        resume = "no checkpoint was written yet"
    raise FloatingPointError("{} became non-finite at iteration {} ({}); training stopped: {}. Lower SOLVER.BASE_LR "
                             "or lengthen SOLVER.WARMUP_ITERS, or check the boxes of that batch".format(
                                 " and ".join(bad), iteration, values, resume))


def save_checked(checkpointer, model, name, arguments):
    """Saves only weights that are all finite: a NaN state never becomes the latest checkpoint."""
    bad = [key for key, value in model.state_dict().items()
           if value.is_floating_point() and not torch.isfinite(value).all()]
    if bad:
        raise FloatingPointError("weights became non-finite before iteration {} was saved ({}{}); {} was not "
                                 "written and last_checkpoint still points at the last good one".format(
                                     arguments["iteration"], ", ".join(bad[:5]), ", ..." if len(bad) > 5 else "",
                                     name))
    checkpointer.save(name, **arguments)


def do_train(model, data_loader, optimizer, scheduler, checkpointer, device, checkpoint_period, arguments,
             log_period=20, logger=None, use_amp=False, progress=False, history=None, tracker=None):
    """Runs iterations arguments["iteration"] + 1 .. len(data_loader) + start; losses are
    reduced over processes for logging; a checkpoint every ``checkpoint_period`` iterations
    and model_final at the end. ``use_amp``: float16 autocast with gradient scaling (CUDA).
    ``progress``: a live tqdm bar (main process); ``history``: a list that receives
    {"iteration", "lr", "time", "data", <losses>} per iteration (for training curves);
    ``tracker``: receives the same and the total loss and peak memory (TensorBoard)."""
    logger = logger or logging.getLogger("atss_core.trainer")
    meters = MetricLogger(delimiter="  ")
    start_iter = arguments["iteration"]
    max_iter = start_iter + len(data_loader)
    logger.info("start training at iteration %d of %d (%d process(es))", start_iter, max_iter, get_world_size())
    model.train()
    scaler = make_grad_scaler(use_amp)
    bar = tqdm(total=max_iter, initial=start_iter, desc="training", unit="it",
               disable=not (progress and get_rank() == 0))
    start_training_time = time.time()
    end = time.time()
    with StopRequest(logger) as stop:
        for iteration, (images, targets, _) in enumerate(data_loader, start_iter + 1):
            data_time = time.time() - end
            arguments["iteration"] = iteration
            images = images.to(device)
            targets = [target.to(device) for target in targets]
            with autocast_context(use_amp):
                loss_dict = model(images, targets)
            loss_dict = {k: v.float() for k, v in loss_dict.items()}
            losses = sum(loss_dict.values())
            # reduced over processes (so every process stops at the same iteration), with the
            # stop request of each process riding along
            reduced = reduce_dict(dict({k: v.detach() for k, v in loss_dict.items()},
                                       **{STOP_KEY: torch.tensor(float(stop.requested), device=losses.device)}))
            stop_requested = float(reduced.pop(STOP_KEY)) > 0
            check_losses_finite(reduced, iteration, checkpointer)
            meters.update(loss=sum(reduced.values()), **reduced)
            optimizer.zero_grad()
            scaler.scale(losses).backward()
            lr = optimizer.param_groups[0]["lr"]  # the rate this iteration used
            scaler.step(optimizer)
            scaler.update()
            scheduler.step()

            batch_time = time.time() - end
            end = time.time()
            meters.update(time=batch_time, data=data_time)
            if history is not None:
                history.append(dict({k: float(v) for k, v in reduced.items()}, iteration=iteration, lr=lr,
                                    time=batch_time, data=data_time))
            if tracker is not None:
                tracker.log_training(iteration, dict({k: float(v) for k, v in reduced.items()},
                                                     loss=float(sum(reduced.values())), lr=lr, time=batch_time,
                                                     data=data_time, memory_mb=peak_memory_mb(device)))
            bar.update(1)
            bar.set_postfix(loss="{:.3f}".format(meters.loss.median), lr="{:.5f}".format(lr))
            if iteration % log_period == 0 or iteration == max_iter or iteration == start_iter + 1:
                eta = datetime.timedelta(seconds=int(meters.time.global_avg * (max_iter - iteration)))
                logger.info("eta: %s  iter: %d/%d  %s  lr: %.6f  max mem: %.0f MB", eta, iteration, max_iter, meters,
                            lr, peak_memory_mb(device))
            if iteration == max_iter:
                save_checked(checkpointer, model, "model_final", arguments)
            elif (checkpoint_period > 0 and iteration % checkpoint_period == 0) or stop_requested:
                save_checked(checkpointer, model, "model_{:07d}".format(iteration), arguments)
            if stop_requested and iteration != max_iter:
                bar.close()
                signum = stop.signum or signal.SIGTERM  # another process received it
                logger.warning("stopped at iteration %d of %d by %s; run the same command again to resume",
                               iteration, max_iter, signal.Signals(signum).name)
                raise SystemExit(128 + signum)
    bar.close()
    total = time.time() - start_training_time
    done = max(arguments["iteration"] - start_iter, 1)
    logger.info("total training time: %s (%.4f s / it)", datetime.timedelta(seconds=int(total)), total / done)
    return meters
