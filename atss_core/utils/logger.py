"""Logging to the console (main process) and to OUTPUT_DIR/log.txt."""
import logging
import os
import sys


def progress_bar_wanted(requested=True, stream=None):
    """Whether to draw a live tqdm bar: when asked for and ``stream`` (tqdm's, stderr) is a
    terminal; redirected to a file, its carriage returns would make one unreadable line, and the
    caller writes plain lines instead."""
    stream = sys.stderr if stream is None else stream
    return bool(requested) and stream.isatty()


def setup_logger(name, save_dir, distributed_rank, filename="log.txt"):
    """Only rank 0 logs; it writes to stdout and, when ``save_dir`` is set, to save_dir/filename."""
    logger = logging.getLogger(name)
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
    if distributed_rank > 0:
        logger.addHandler(logging.NullHandler())
        return logger
    formatter = logging.Formatter("%(asctime)s %(name)s %(levelname)s: %(message)s")
    console = logging.StreamHandler(stream=sys.stdout)
    console.setLevel(logging.DEBUG)
    console.setFormatter(formatter)
    logger.addHandler(console)
    if save_dir:
        os.makedirs(save_dir, exist_ok=True)
        file_handler = logging.FileHandler(os.path.join(save_dir, filename))
        file_handler.setLevel(logging.DEBUG)
        file_handler.setFormatter(formatter)
        logger.addHandler(file_handler)
    return logger
