"""What hangs on the training loop (engine/trainer.py), one hook per concern: the NaN check,
stop signals, logging and progress, the training history, TensorBoard and checkpoints.
default_hooks (the end of this file) puts them together for a training run."""
import datetime
import logging
import resource
import signal
import time

import torch
from tqdm import tqdm

from atss_core.utils.cli import CommandError
from atss_core.utils.comm import get_rank, get_world_size, synchronize
from atss_core.utils.logger import progress_bar_wanted
from atss_core.utils.metric_logger import MetricLogger
from atss_core.utils.stop_signals import StopRequest


def peak_memory_mb(device):
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 1024.0 / 1024.0
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


class TrainingStopped(CommandError):
    """Training stopped early by a signal (after saving); the command exits 128 + signal."""

    def __init__(self, signum, iteration):
        super().__init__("stopped at iteration {} by {}".format(iteration, signal.Signals(signum).name),
                         exit_status=128 + signum)
        self.signum = signum


class TrainState:
    """The loop's state, shared with its hooks."""

    def __init__(self, model, device, arguments, start_iter, max_iter, scaler=None):
        self.model = model
        self.device = device
        self.arguments = arguments  # saved with every checkpoint ("iteration", "seed")
        self.scaler = scaler  # float16 gradient scaling; its state goes into the checkpoints
        self.start_iter = start_iter
        self.max_iter = max_iter
        self.iteration = start_iter
        self.losses = {}  # this iteration's losses, averaged over processes (0-d tensors)
        self.lr = 0.0
        self.step_time = 0.0
        self.data_time = 0.0
        self.signal_received = None  # the stop signal this process received (StopSignals sets it)
        self.stop_requested = False  # a stop signal reached some process: all stop after this step
        self.meters = MetricLogger(delimiter="  ")  # smoothed losses and times (Progress fills them)
        self.grad_norm = None  # the gradients' total norm before clipping (SOLVER.CLIP_GRADIENTS)
        # {name: function returning a state}: saved into arguments[name] with every checkpoint
        self.checkpoint_state = {}

    def loss_values(self):
        return {name: float(value) for name, value in self.losses.items()}

    @property
    def stop_signal(self):
        """The signal that stops the run: this process's own, else SIGTERM (it reached another)."""
        return self.signal_received or signal.SIGTERM


class HookBase:
    """A hook sees the loop's TrainState at these points, in this order, each hook in the
    order of the list the loop was given:

    before_train   once, before the first iteration
    after_loss     every iteration: the losses, reduced over processes, before they reach the
                   weights (raise here to keep a bad step out of the weights)
    after_step     every iteration, after the optimizer and scheduler steps
    after_train    once, always (also when the loop or a hook raised) for every hook whose
                   before_train ran
    """

    def before_train(self, state):
        pass

    def after_loss(self, state):
        pass

    def after_step(self, state):
        pass

    def after_train(self, state):
        pass


class NonFiniteLossCheck(HookBase):
    """A NaN or inf loss stops training before it reaches the weights; the message names the
    loss term and the checkpoint a new run would resume from."""

    def __init__(self, checkpointer):
        self.checkpointer = checkpointer

    def after_loss(self, state):
        bad = [name for name, value in state.losses.items() if not torch.isfinite(value)]
        if not bad:
            return
        values = ", ".join("{} {:.4g}".format(name, value) for name, value in state.loss_values().items())
        if self.checkpointer.has_checkpoint():
            resume = "the last good checkpoint, {}, is kept and a new run resumes from it".format(
                self.checkpointer.get_checkpoint_file())
        else:
            resume = "no checkpoint was written yet"
        raise FloatingPointError("{} became non-finite at iteration {} ({}); training stopped: {}. Lower "
                                 "SOLVER.BASE_LR or lengthen SOLVER.WARMUP_ITERS, or check the boxes of that "
                                 "batch".format(" and ".join(bad), state.iteration, values, resume))


class StopSignals(HookBase):
    """Installs the SIGINT/SIGTERM handlers for the duration of training (utils/stop_signals);
    a signal sets state.signal_received and the loop shares it with the other processes."""

    def __init__(self, logger):
        self.logger = logger

    def before_train(self, state):
        self.request = StopRequest(self.logger, on_request=lambda signum: setattr(state, "signal_received", signum))
        self.request.__enter__()

    def after_train(self, state):
        self.request.__exit__(None, None, None)


class Progress(HookBase):
    """Smoothed losses, times, ETA, learning rate and peak memory in the log every
    ``log_period`` iterations (and the first and last), and a live tqdm bar when asked."""

    def __init__(self, logger, log_period, progress):
        self.logger = logger
        self.log_period = log_period
        self.progress = progress

    def before_train(self, state):
        self.logger.info("start training at iteration %d of %d (%d process(es))", state.start_iter, state.max_iter,
                         get_world_size())
        self.bar = tqdm(total=state.max_iter, initial=state.start_iter, desc="training", unit="it",
                        disable=not progress_bar_wanted(self.progress and get_rank() == 0))
        self.start = time.time()

    def after_loss(self, state):
        state.meters.update(loss=sum(state.losses.values()), **state.losses)

    def after_step(self, state):
        meters = state.meters
        meters.update(time=state.step_time, data=state.data_time)
        self.bar.update(1)
        self.bar.set_postfix(loss="{:.3f}".format(meters.loss.median), lr="{:.5f}".format(state.lr))
        iteration = state.iteration
        if iteration % self.log_period == 0 or iteration == state.max_iter or iteration == state.start_iter + 1:
            eta = datetime.timedelta(seconds=int(meters.time.global_avg * (state.max_iter - iteration)))
            self.logger.info("eta: %s  iter: %d/%d  %s  lr: %.6f  max mem: %.0f MB", eta, iteration, state.max_iter,
                             meters, state.lr, peak_memory_mb(state.device))

    def after_train(self, state):
        self.bar.close()
        if state.iteration == state.max_iter:
            total = time.time() - self.start
            done = max(state.iteration - state.start_iter, 1)
            self.logger.info("total training time: %s (%.4f s / it)", datetime.timedelta(seconds=int(total)),
                             total / done)


class History(HookBase):
    """Appends {"iteration", "lr", "time", "data", <losses>} per iteration to a list."""

    def __init__(self, history):
        self.history = history

    def after_step(self, state):
        self.history.append(dict(state.loss_values(), iteration=state.iteration, lr=state.lr, time=state.step_time,
                                 data=state.data_time))


class Tracking(HookBase):
    """Training scalars to a tracker (engine/tensorboard.py)."""

    def __init__(self, tracker):
        self.tracker = tracker

    def after_step(self, state):
        values = state.loss_values()
        self.tracker.log_training(state.iteration, dict(values, loss=sum(values.values()), lr=state.lr,
                                                        time=state.step_time, data=state.data_time,
                                                        memory_mb=peak_memory_mb(state.device)))


class EMAUpdate(HookBase):
    """Updates the moving average of the weights (engine/ema.py) after every step; its state
    goes into every checkpoint under "ema"."""

    def __init__(self, ema):
        self.ema = ema

    def before_train(self, state):
        state.checkpoint_state["ema"] = self.ema.state_dict

    def after_step(self, state):
        self.ema.update(state.model)


class MetricsLog(HookBase):
    """Every ``period`` iterations (and the last), a line of training scalars in metrics.json
    (utils/metrics_file.py): the smoothed losses, lr, times, memory, and the gradient norm when
    clipping measures it."""

    def __init__(self, metrics_file, period):
        self.metrics_file = metrics_file
        self.period = period

    def after_step(self, state):
        iteration = state.iteration
        if iteration % self.period and iteration != state.max_iter:
            return
        meters = state.meters.meters
        values = {name: meter.median for name, meter in meters.items() if name not in ("time", "data")}
        values.update(lr=state.lr, time=meters["time"].global_avg if "time" in meters else state.step_time,
                      data_time=meters["data"].global_avg if "data" in meters else state.data_time,
                      memory_mb=peak_memory_mb(state.device))
        if state.grad_norm is not None:
            values["grad_norm"] = float(state.grad_norm)
        self.metrics_file.write(iteration, values)


class Checkpoints(HookBase):
    """model_XXXXXXX every ``period`` iterations, model_final at the end, and a checkpoint when
    a stop signal arrived, after which it raises TrainingStopped (the command exits 128 +
    signal). Only weights that are all finite are saved: a NaN state never becomes the latest
    checkpoint."""

    def __init__(self, checkpointer, period, logger):
        self.checkpointer = checkpointer
        self.period = period
        self.logger = logger

    def after_step(self, state):
        iteration = state.iteration
        if iteration == state.max_iter:
            self.save(state, "model_final")
        elif (self.period > 0 and iteration % self.period == 0) or state.stop_requested:
            self.save(state, "model_{:07d}".format(iteration))
        if state.stop_requested and iteration != state.max_iter:
            synchronize("the stop checkpoint")  # no process exits before the main one has saved
            signum = state.stop_signal
            self.logger.warning("stopped at iteration %d of %d by %s; run the same command again to resume",
                                iteration, state.max_iter, signal.Signals(signum).name)
            raise TrainingStopped(signum, iteration)

    def save(self, state, name):
        bad = [key for key, value in state.model.state_dict().items()
               if value.is_floating_point() and not torch.isfinite(value).all()]
        if bad:
            raise FloatingPointError("weights became non-finite before iteration {} was saved ({}{}); {} was not "
                                     "written and last_checkpoint still points at the last good one".format(
                                         state.iteration, ", ".join(bad[:5]), ", ..." if len(bad) > 5 else "", name))
        if state.scaler is not None and state.scaler.is_enabled():
            state.arguments["grad_scaler"] = state.scaler.state_dict()  # a resumed run keeps its loss scale
        for key, current in state.checkpoint_state.items():
            state.arguments[key] = current()
        self.checkpointer.save(name, **state.arguments)


def default_hooks(checkpointer, checkpoint_period, logger=None, log_period=20, progress=False, history=None,
                  tracker=None, ema=None, metrics_file=None, evaluation=None):
    """The hooks of a training run, in the order they act after each step: the NaN check,
    stop signals, the log (and a tqdm bar with ``progress``), per-iteration records appended to
    ``history`` (a list), scalars to ``tracker`` (engine/tensorboard.py), the moving average
    ``ema``, training lines in ``metrics_file`` every ``log_period``, the periodic ``evaluation``
    hook (engine/validation.py), then checkpoints every ``checkpoint_period`` iterations and at
    the end (after the evaluation, so that they hold its best record)."""
    logger = logger or logging.getLogger("atss_core.trainer")
    hooks = [NonFiniteLossCheck(checkpointer), StopSignals(logger), Progress(logger, log_period, progress)]
    if history is not None:
        hooks.append(History(history))
    if tracker is not None:
        hooks.append(Tracking(tracker))
    if ema is not None:
        hooks.append(EMAUpdate(ema))
    if metrics_file is not None:
        hooks.append(MetricsLog(metrics_file, log_period))
    if evaluation is not None:
        hooks.append(evaluation)
    hooks.append(Checkpoints(checkpointer, checkpoint_period, logger))
    return hooks
