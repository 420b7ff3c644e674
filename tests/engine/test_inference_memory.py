"""Evaluation keeps memory flat: no image batch outlives its iteration, and each prediction
holds only its own (CPU) data, not a view into a larger per-batch tensor."""
import gc
import weakref

import torch

from atss_core.engine.inference import compute_on_dataset
from atss_core.structures import to_image_list
from tests.utils.test_checkpoint import tiny_model


def test_batches_are_released_and_predictions_are_compact():
    cfg, model = tiny_model()
    model.rpn.box_selector_test.pre_nms_thresh = 0.0  # random weights: a full set of detections
    released = []

    def loader():
        generator = torch.Generator().manual_seed(0)
        for start, sizes in ((0, [(256, 320), (256, 288)]), (2, [(256, 256)])):
            images = to_image_list([torch.randn(3, h, w, generator=generator) * 50 for h, w in sizes], 32)
            released.append(weakref.ref(images.tensors))
            yield images, None, tuple(range(start, start + len(sizes)))

    predictions = compute_on_dataset(model, loader(), torch.device("cpu"), show_progress=False)
    gc.collect()
    assert len(released) == 2 and all(ref() is None for ref in released)
    assert sorted(predictions) == [0, 1, 2]
    for prediction in predictions.values():
        assert len(prediction) == cfg.TEST.DETECTIONS_PER_IMG
        for tensor in [prediction.bbox] + [prediction.get_field(k) for k in prediction.fields()]:
            assert tensor.device.type == "cpu"
            assert tensor.untyped_storage().nbytes() == tensor.numel() * tensor.element_size()
