"""Gradient accumulation (SOLVER.ACCUMULATE_STEPS k): one iteration's batch runs as k forward
and backward passes before the optimiser's one step. The ATSS loss normalises by the number of
positives and the centerness-target sum of the whole batch (averaged over processes); both
follow from the anchors and targets alone, so they are counted for all k parts first and every
part's loss is divided by them: the summed gradients equal the one-pass batch's to float
rounding. The padded batch is split as it is, so each part has the same anchors as the whole."""
import contextlib

import torch

from atss_core.engine.precision import autocast_context
from atss_core.structures.image_list import ImageList
from atss_core.utils.comm import reduce_sum, unwrap_model



def split_batch(images, targets, steps):
    """The batch (ImageList, targets) in ``steps`` equal parts, in order."""
    count = len(targets)
    if count % steps:
        raise ValueError("SOLVER.ACCUMULATE_STEPS {} must divide the images per process and batch ({})".format(
            steps, count))
    size = count // steps
    return [(ImageList(images.tensors[i:i + size], images.image_sizes[i:i + size]), targets[i:i + size])
            for i in range(0, count, size)]


def batch_normalizers(model, parts):
    """(positives, centerness-target sum) summed over the parts and over the processes."""
    plain = unwrap_model(model)
    counts = [plain.loss_counts(images, targets) for images, targets in parts]
    local = torch.tensor([sum(c[0] for c in counts), sum(c[1] for c in counts)], dtype=torch.float64)
    device = next(plain.parameters()).device
    total = reduce_sum(local.to(device))
    return float(total[0]), float(total[1])


@contextlib.contextmanager
def _normalised_by(model, normalizers):
    loss_evaluator = unwrap_model(model).rpn.loss_evaluator
    loss_evaluator.batch_normalizers = normalizers
    try:
        yield
    finally:
        loss_evaluator.batch_normalizers = None


def accumulate_gradients(model, images, targets, steps, scaler, use_amp=None):
    """Runs the parts' forward and backward passes (gradients summed into .grad; DDP
    synchronises them in the last pass only). Returns the batch's losses {name: 0-d tensor},
    each the sum of the parts' (detached), as one pass would give them."""
    parts = split_batch(images, targets, steps)
    totals = {}
    with _normalised_by(model, batch_normalizers(model, parts)):
        for index, (part_images, part_targets) in enumerate(parts):
            last = index == len(parts) - 1
            sync = contextlib.nullcontext() if last or not hasattr(model, "no_sync") else model.no_sync()
            with sync:
                with autocast_context(use_amp):
                    loss_dict = model(part_images, part_targets)
                loss_dict = {k: v.float() for k, v in loss_dict.items()}
                scaler.scale(sum(loss_dict.values())).backward()
            for name, value in loss_dict.items():
                totals[name] = totals[name] + value.detach() if name in totals else value.detach()
    return totals
