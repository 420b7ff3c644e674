import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.engine.precision import autocast_context, check_dtype, make_grad_scaler


def cfg_with(**overrides):
    cfg = default_cfg.clone()
    for key, value in overrides.items():
        cfg.merge_from_list([key, value])
    return cfg


def test_dtype_checks():
    assert check_dtype(cfg_with(**{"MODEL.DEVICE": "cpu"})) is False
    with pytest.raises(ValueError, match="needs MODEL.DEVICE cuda"):
        check_dtype(cfg_with(**{"MODEL.DEVICE": "cpu", "DTYPE": "float16"}))
    with pytest.raises(ValueError, match="DTYPE must be"):
        check_dtype(cfg_with(**{"DTYPE": "bfloat8"}))


def test_float32_path_is_a_plain_step():
    scaler = make_grad_scaler(False)
    x = torch.ones(2, requires_grad=True)
    with autocast_context(False):
        loss = (x * 3).sum()
    scaler.scale(loss).backward()
    assert x.grad.tolist() == [3.0, 3.0] and loss.dtype == torch.float32


@pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 autocast needs a CUDA device")
def test_float16_autocast_on_cuda():
    with autocast_context(True):
        y = torch.ones(4, 4, device="cuda") @ torch.ones(4, 4, device="cuda")
    assert y.dtype == torch.float16
