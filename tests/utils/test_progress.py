"""Progress output: a live bar only on a terminal; in a redirected log, plain lines instead."""
import io
import logging

import torch

from atss_core.engine.inference import compute_on_dataset
from atss_core.structures import BoxList
from atss_core.utils.logger import progress_bar_wanted


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_a_bar_is_drawn_only_on_a_terminal_and_when_asked():
    assert progress_bar_wanted(True, Terminal())
    assert not progress_bar_wanted(False, Terminal())
    assert not progress_bar_wanted(True, io.StringIO())  # a file: plain lines instead


class OneBoxPerImage(torch.nn.Module):
    def forward(self, images):
        return [BoxList(torch.zeros(1, 4), (8, 8)) for _ in range(images.shape[0])]


def test_inference_in_a_redirected_log_reports_in_plain_lines(caplog, capsys):
    batches = [(torch.zeros(1, 3, 8, 8), None, (i,)) for i in range(20)]
    with caplog.at_level(logging.INFO, logger="atss_core.inference"):
        predictions = compute_on_dataset(OneBoxPerImage(), batches, torch.device("cpu"))
    assert sorted(predictions) == list(range(20))
    lines = [r.getMessage() for r in caplog.records if r.name == "atss_core.inference"]
    assert lines == ["inference: {} of 20 batches done".format(n) for n in range(2, 21, 2)]
    assert "\r" not in capsys.readouterr().err  # no tqdm bar in a file
