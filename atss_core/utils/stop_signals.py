"""SIGINT / SIGTERM during training: the first asks the loop to save a checkpoint after the
current iteration and exit; a second exits at once."""
import logging
import os
import signal
import threading
import time

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
# schedulers and launchers often deliver one stop twice (Slurm to every process and torchrun
# forwarding it again): a repeat this soon after the first is the same request
REPEAT_GRACE_SECONDS = 1.0


class StopRequest:
    """Context manager around the training loop. ``signum`` is the first stop signal received
    (None until then); ``on_request(signum)`` is called when it arrives. Handlers are only
    installed in the main thread (where Python delivers signals) and the previous ones are
    restored on exit."""

    def __init__(self, logger=None, on_request=None):
        self.signum = None
        self.logger = logger or logging.getLogger(__name__)
        self.on_request = on_request
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            if time.monotonic() - self.received_at < REPEAT_GRACE_SECONDS:
                return
            os._exit(128 + signum)  # a second request: no more saving
        self.signum = signum
        self.received_at = time.monotonic()
        if self.on_request is not None:
            self.on_request(signum)
        self.logger.warning("received %s: saving a checkpoint after this iteration, then stopping (send it again "
                            "to stop at once)", signal.Signals(signum).name)

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for signum in STOP_SIGNALS:
                self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}
        return False

    @property
    def requested(self):
        return self.signum is not None


def ignore_stop_signals_in_worker():
    """Data-loader workers leave Ctrl-C and SIGTERM (to the whole process group) to the main
    process, which stops cleanly; they exit when it does."""
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
