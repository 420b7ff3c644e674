"""SIGINT / SIGTERM during training: the first asks the loop to save a checkpoint after the
current iteration and exit; a second exits at once."""
import logging
import os
import signal
import threading

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequest:
    """Context manager around the training loop. ``signum`` is the first stop signal received
    (None until then). Handlers are only installed in the main thread (where Python delivers
    signals) and the previous ones are restored on exit."""

    def __init__(self, logger=None):
        self.signum = None
        self.logger = logger or logging.getLogger(__name__)
        self._previous = {}

    def _handle(self, signum, frame):
        if self.signum is not None:
            os._exit(128 + signum)  # the second signal: no more saving
        self.signum = signum
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


def ignore_interrupt_in_worker():
    """Data-loader workers leave Ctrl-C to the main process, which stops cleanly."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
