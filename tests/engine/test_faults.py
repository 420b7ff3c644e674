"""Faults during training: a NaN loss or NaN weights stop the run and keep the last good
checkpoint; a stop signal saves and exits, a second one exits at once."""
import os
import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from atss_core.engine.trainer import do_train
from atss_core.structures.bounding_box import BoxList
from atss_core.structures.image_list import to_image_list
from atss_core.utils.checkpoint import Checkpointer


class ScriptedLoss(torch.nn.Module):
    """loss_a = w, loss_b = 2w; at iteration ``nan_at`` loss_b is NaN."""

    def __init__(self, nan_at):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.calls = 0
        self.nan_at = nan_at

    def forward(self, images, targets):
        self.calls += 1
        loss_b = 2 * self.w if self.calls != self.nan_at else self.w * float("nan")
        return {"loss_a": self.w, "loss_b": loss_b}


def batches(count):
    return [(to_image_list([torch.zeros(3, 8, 8)]), [BoxList(torch.zeros(0, 4), (8, 8))], (0,))] * count


def train(model, tmp_path, iterations, lr=0.1):
    optimizer = torch.optim.SGD(model.parameters(), lr=lr)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    checkpointer = Checkpointer(model, optimizer, scheduler, save_dir=str(tmp_path), save_to_disk=True)
    # the official call: the default hooks save with the checkpointer every checkpoint_period
    do_train(model, batches(iterations), optimizer, scheduler, checkpointer, torch.device("cpu"), 2, {"iteration": 0})
    return checkpointer


def test_nan_loss_names_the_term_and_iteration_and_keeps_the_last_good_checkpoint(tmp_path):
    model = ScriptedLoss(nan_at=5)
    with pytest.raises(FloatingPointError) as error:
        train(model, tmp_path, iterations=8)
    message = str(error.value)
    assert "loss_b became non-finite at iteration 5" in message and "loss_a" in message
    assert "model_0000004.pth" in message and "is kept" in message
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000004.pth"
    saved = torch.load(tmp_path / "model_0000004.pth", weights_only=True)
    assert saved["iteration"] == 4 and torch.isfinite(saved["model"]["w"])
    assert torch.isfinite(model.w)  # stopped before the NaN reached the weights


def test_nan_loss_before_any_checkpoint_says_so(tmp_path):
    with pytest.raises(FloatingPointError, match="at iteration 1 .*no checkpoint was written yet"):
        train(ScriptedLoss(nan_at=1), tmp_path, iterations=3)


class InfGradient(torch.nn.Module):
    """A finite loss (0) whose gradient is inf at iteration 4: the weights become non-finite in
    the step just before the checkpoint of iteration 4 is due."""

    def __init__(self):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.calls = 0

    def forward(self, images, targets):
        self.calls += 1
        if self.calls == 4:
            return {"loss_w": torch.sqrt(self.w - self.w.detach())}
        return {"loss_w": self.w}


def test_non_finite_weights_are_never_saved(tmp_path):
    with pytest.raises(FloatingPointError, match="weights became non-finite before iteration 4 was saved \\(w\\)"):
        train(InfGradient(), tmp_path, iterations=6)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000002.pth"
    assert not (tmp_path / "model_0000004.pth").exists()


class SignalsItself(torch.nn.Module):
    """Sends SIGTERM to its own process during the forward of iteration ``at``."""

    def __init__(self, at):
        super().__init__()
        self.w = torch.nn.Parameter(torch.ones(()))
        self.calls = 0
        self.at = at

    def forward(self, images, targets):
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGTERM)
        return {"loss_w": self.w}


def test_a_stop_signal_saves_then_raises_training_stopped(tmp_path):
    """The stop is an exception for the command line to turn into 143, after the checkpoint of
    the iteration that was running; the handlers are restored afterwards."""
    from atss_core.engine.hooks import TrainingStopped

    model = SignalsItself(at=3)
    with pytest.raises(TrainingStopped) as stopped:
        train(model, tmp_path, iterations=8)
    assert stopped.value.exit_status == 128 + signal.SIGTERM and stopped.value.signum == signal.SIGTERM
    assert "stopped at iteration 3 by SIGTERM" in str(stopped.value)
    assert (tmp_path / "last_checkpoint").read_text() == "model_0000003.pth"
    assert torch.load(tmp_path / "model_0000003.pth", weights_only=True)["iteration"] == 3
    assert model.calls == 3 and signal.getsignal(signal.SIGTERM) == signal.SIG_DFL


SIGNAL_SCRIPT = textwrap.dedent("""
    import os, signal, sys, time
    from atss_core.utils.stop_signals import StopRequest
    with StopRequest() as stop:
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)
        print("first signal recorded:", stop.signum == signal.SIGTERM, flush=True)
        if {second_after} is not None:
            time.sleep({second_after})
            os.kill(os.getpid(), signal.SIGINT)
            time.sleep(0.2)
            print("still running after the second signal", flush=True)
    print("handlers restored:", signal.getsignal(signal.SIGTERM) == signal.SIG_DFL, flush=True)
""")


@pytest.mark.parametrize("second_after", [None, 0.0, 1.2])
def test_first_signal_is_recorded_and_a_second_exits_at_once(second_after):
    """A second signal right after the first (a launcher forwarding the same stop) is the same
    request; one that comes later exits at once."""
    script = SIGNAL_SCRIPT.format(second_after=second_after)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60,
                            env=dict(os.environ, PYTHONUNBUFFERED="1"))
    assert "first signal recorded: True" in result.stdout
    if second_after is not None and second_after > 1.0:
        assert result.returncode == 128 + signal.SIGINT
        assert "still running" not in result.stdout
    else:
        assert result.returncode == 0 and "handlers restored: True" in result.stdout


def test_hooks_that_started_are_wound_down_when_a_later_one_fails_to_start(tmp_path):
    from atss_core.engine.hooks import HookBase, StopSignals

    class FailsToStart(HookBase):
        def before_train(self, state):
            raise RuntimeError("cannot start")

    model = ScriptedLoss(nan_at=0)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
    with pytest.raises(RuntimeError, match="cannot start"):
        do_train(model, batches(2), optimizer, scheduler, None, torch.device("cpu"), 0, {"iteration": 0},
                 hooks=[StopSignals(None), FailsToStart()])
    assert signal.getsignal(signal.SIGTERM) == signal.SIG_DFL  # the stop-signal handlers were removed
