"""The training samples as the model sees them, after the whole pipeline (sampling, every
augmentation, the resize), back as pictures: what tools/browse_dataset.py writes."""
from atss_core.structures.boxlist_ops import split_ignore_regions
from atss_core.utils.drawing import IGNORE_COLOUR, draw_box, label_name, palette

from .build import make_data_loader
from .transforms.build import normalize_transform


def training_samples(cfg, count, seed=0):
    """(class names or None, an iterator over (BGR uint8 image, target BoxList, dataset index))
    of the first ``count`` samples that training with this config and ``seed`` would draw, in
    order, on one process."""
    loader = make_data_loader(cfg, is_train=True, is_distributed=False, seed=seed)
    names = loader.dataset.class_names() if hasattr(loader.dataset, "class_names") else None
    return names, _samples(loader, normalize_transform(cfg), count)


def _samples(loader, normalize, count):
    produced = 0
    for images, targets, indices in loader:
        for tensor, (height, width), target, index in zip(images.tensors, images.image_sizes, targets, indices):
            yield normalize.invert(tensor[:, :height, :width]), target, index
            produced += 1
            if produced == count:
                return


def draw_training_sample(image, target, class_names=None):
    """A copy of ``image`` with its objects (class colour and name) and ignore regions (grey,
    dashed) drawn."""
    canvas = image.copy()
    objects, regions = split_ignore_regions(target)
    for box, label in zip(objects.bbox.tolist(), objects.get_field("labels").tolist()):
        draw_box(canvas, box, palette(label), label_name(class_names, label))
    if regions is not None:
        for box in regions.bbox.tolist():
            draw_box(canvas, box, IGNORE_COLOUR, "ignore", dashed=True)
    return canvas
