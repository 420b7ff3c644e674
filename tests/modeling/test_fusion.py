"""optimize_for_inference (frozen-norm folding + channels_last) against the plain model, on the
recorded official model and a DCN / GroupNorm variant."""
import pytest
import torch

from atss_core.layers import FrozenBatchNorm2d
from atss_core.modeling.fusion import fold_frozen_batchnorm, optimize_for_inference
from atss_core.structures import to_image_list

from ..golden.test_official_outputs import assert_same_detections, build_model, input_images, load_record


# relative tolerance per case: the random deformable offsets of the DCN model (tens of pixels)
# amplify float rounding ~10x more than plain convolutions do
TOLERANCE = {"r50_frozenbn": 1e-4, "x50_multianchor": 1e-4, "r50_dcnv2": 3e-3}


@pytest.mark.parametrize("case", sorted(TOLERANCE))
def test_optimized_model_gives_the_plain_detections(case):
    tol = TOLERANCE[case]
    record = load_record(case)
    _, plain = build_model(record)
    cfg, fast = build_model(record)
    plain.eval()
    norms = sum(isinstance(m, FrozenBatchNorm2d) for m in fast.modules())
    optimize_for_inference(fast)
    assert norms > 0 and not any(isinstance(m, FrozenBatchNorm2d) for m in fast.modules())
    batch = to_image_list(input_images(record), cfg.DATALOADER.SIZE_DIVISIBILITY)
    with torch.no_grad():
        plain_features = plain.backbone(batch.tensors)
        fast_features = fast.backbone(batch.tensors.contiguous(memory_format=torch.channels_last))
        for p, f in zip(plain_features, fast_features):
            torch.testing.assert_close(f, p, rtol=tol, atol=tol * p.abs().max().item())
        expected, got = plain(batch), fast(batch)
    for e, g in zip(expected, got):
        assert len(e) > 0
        # matched as a set: near-equal candidate scores may swap the (unsorted) NMS input order
        assert_same_detections(g, {"size": e.size, "scores": e.get_field("scores"), "labels": e.get_field("labels"),
                                   "bbox": e.bbox}, score_tol=tol, box_tol=50 * tol)


def test_folding_counts_and_leaves_group_norm_alone():
    record = load_record("r50_gn")
    _, model = build_model(record)
    assert fold_frozen_batchnorm(model) == 0  # GroupNorm models have nothing to fold
    _, frozen = build_model(load_record("r50_frozenbn"))
    # the stem, 16 blocks x 3 and 4 shortcuts
    assert fold_frozen_batchnorm(frozen) == 1 + 16 * 3 + 4
