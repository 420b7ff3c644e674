"""A deterministic synthetic detection dataset in COCO format (the quickstart's default data).

Four classes of clearly different shapes and colours — circle (red), square (green),
triangle (blue), cross (yellow) — from small to large, overlapping and touching, on
textured, noisy backgrounds; some images have no object. Boxes are the tight boxes of
the visible pixels; objects hidden for more than 60% by later ones are not annotated.
The same seed gives byte-identical files (PNG images, sorted-key json).

The dense variant (``dense_objects``, tools/make_synthetic_dataset.py --dense) packs hundreds
to thousands of small objects per image, one per cell of a jittered grid, for dense-scene
training and evaluation (TEST.COCO_MAX_DETS past 100).
"""
import json
import os

import cv2
import numpy as np

CLASSES = ("circle", "square", "triangle", "cross")
COLORS_BGR = {"circle": (40, 40, 220), "square": (40, 200, 40), "triangle": (220, 60, 40), "cross": (30, 220, 230)}


def _background(rng, size):
    """Smooth random colour field + stripes + pixel noise."""
    low = rng.randint(40, 160, size=(4, 4, 3)).astype(np.float32)
    image = cv2.resize(low, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size]
    angle, period = rng.uniform(0, np.pi), rng.uniform(6, 24)
    stripes = 12 * np.sin((xx * np.cos(angle) + yy * np.sin(angle)) * 2 * np.pi / period)
    image += stripes[..., None] + rng.normal(0, 10, size=image.shape)
    return image


def _shape_mask(rng, name, size, scale, centre=None):
    """A boolean mask of one object of the given class, centred at ``centre`` or a random place."""
    mask = np.zeros((size, size), dtype=np.uint8)
    half = scale / 2.0
    cx, cy = rng.uniform(half * 0.6, size - half * 0.6, size=2) if centre is None else centre
    if name == "circle":
        cv2.circle(mask, (int(cx), int(cy)), int(half), 1, -1)
    elif name == "square":
        angle = rng.uniform(0, 90)
        box = cv2.boxPoints(((cx, cy), (scale * 0.9, scale * 0.9), angle)).astype(np.int32)
        cv2.fillPoly(mask, [box], 1)
    elif name == "triangle":
        angle = rng.uniform(0, 2 * np.pi)
        points = [(cx + half * np.cos(angle + k * 2 * np.pi / 3), cy + half * np.sin(angle + k * 2 * np.pi / 3))
                  for k in range(3)]
        cv2.fillPoly(mask, [np.array(points, dtype=np.int32)], 1)
    else:
        arm = max(int(scale * 0.18), 1)
        cv2.rectangle(mask, (int(cx - half), int(cy - arm)), (int(cx + half), int(cy + arm)), 1, -1)
        cv2.rectangle(mask, (int(cx - arm), int(cy - half)), (int(cx + arm), int(cy + half)), 1, -1)
    return mask.astype(bool)


def render_image(rng, size=128, max_objects=5, empty_prob=0.08):
    """(BGR uint8 image, [(class name, (x0, y0, x1, y1) inclusive)])."""
    image = _background(rng, size)
    if rng.rand() < empty_prob:
        return np.clip(image, 0, 255).astype(np.uint8), []
    objects = []
    visible_owner = np.full((size, size), -1, dtype=np.int32)
    for index in range(rng.randint(1, max_objects + 1)):
        name = CLASSES[rng.randint(len(CLASSES))]
        scale = float(np.exp(rng.uniform(np.log(12), np.log(size * 0.7))))  # small to large
        mask = _shape_mask(rng, name, size, scale)
        if mask.sum() < 16:
            continue
        color = np.array(COLORS_BGR[name], dtype=np.float32) + rng.uniform(-25, 25, size=3)
        shade = 1.0 + 0.15 * rng.normal(size=(size, size, 1))
        image = np.where(mask[..., None], color * shade, image)
        visible_owner[mask] = index
        objects.append((index, name, int(mask.sum())))
    annotations = []
    for index, name, full_area in objects:
        ys, xs = np.nonzero(visible_owner == index)
        if len(xs) < 0.4 * full_area or len(xs) < 9:
            continue  # mostly hidden
        annotations.append((name, (int(xs.min()), int(ys.min()), int(xs.max()), int(ys.max()))))
    return np.clip(image, 0, 255).astype(np.uint8), annotations


def render_dense_image(rng, size=512, min_objects=500, max_objects=1000):
    """(BGR uint8 image, [(class name, box)]) with min..max_objects small objects, each in its own
    cell of a jittered grid (sides of 0.45 to 0.85 of a cell), so that few overlap."""
    image = _background(rng, size)
    count = rng.randint(min_objects, max_objects + 1)
    cells_per_side = int(np.ceil(np.sqrt(count)))
    cell = size / cells_per_side
    chosen = rng.choice(cells_per_side * cells_per_side, size=count, replace=False)
    annotations = []
    for index in sorted(chosen.tolist()):
        row, col = divmod(index, cells_per_side)
        scale = cell * rng.uniform(0.45, 0.85)
        jitter = (cell - scale) / 2
        centre = ((col + 0.5) * cell + rng.uniform(-jitter, jitter), (row + 0.5) * cell + rng.uniform(-jitter, jitter))
        name = CLASSES[rng.randint(len(CLASSES))]
        # drawn in a small window around the object (the whole-image mask would cost size^2 each)
        x0, y0 = max(int(centre[0] - scale) - 2, 0), max(int(centre[1] - scale) - 2, 0)
        window = int(2 * scale) + 5
        mask = _shape_mask(rng, name, window, scale, (centre[0] - x0, centre[1] - y0))
        mask = mask[:size - y0, :size - x0]
        if mask.sum() < 9:
            continue
        color = np.array(COLORS_BGR[name], dtype=np.float32) + rng.uniform(-25, 25, size=3)
        region = image[y0:y0 + mask.shape[0], x0:x0 + mask.shape[1]]
        region[mask] = color
        ys, xs = np.nonzero(mask)
        annotations.append((name, (int(xs.min()) + x0, int(ys.min()) + y0, int(xs.max()) + x0,
                                   int(ys.max()) + y0)))
    return np.clip(image, 0, 255).astype(np.uint8), annotations


def write_split(folder, split, count, seed, size=128, dense_objects=None):
    """Writes <folder>/<split>/*.png and <folder>/annotations/instances_<split>.json; returns the
    json path. ``dense_objects`` (min, max): dense images (:func:`render_dense_image`)."""
    rng = np.random.RandomState(seed)
    image_dir = os.path.join(folder, split)
    os.makedirs(image_dir, exist_ok=True)
    os.makedirs(os.path.join(folder, "annotations"), exist_ok=True)
    images, annotations = [], []
    for i in range(count):
        if dense_objects:
            image, objects = render_dense_image(rng, size, *dense_objects)
        else:
            image, objects = render_image(rng, size)
        name = "{}_{:05d}.png".format(split, i)
        cv2.imwrite(os.path.join(image_dir, name), image)
        images.append({"id": i + 1, "file_name": name, "width": size, "height": size})
        for label, (x0, y0, x1, y1) in objects:
            w, h = x1 - x0 + 1, y1 - y0 + 1
            annotations.append({"id": len(annotations) + 1, "image_id": i + 1,
                                "category_id": CLASSES.index(label) + 1, "bbox": [x0, y0, w, h],
                                "area": w * h, "iscrowd": 0})
    categories = [{"id": i + 1, "name": name} for i, name in enumerate(CLASSES)]
    path = os.path.join(folder, "annotations", "instances_{}.json".format(split))
    with open(path, "w") as f:
        json.dump({"images": images, "annotations": annotations, "categories": categories}, f, sort_keys=True)
    return path


def make_synthetic_dataset(folder, seed=0, num_train=400, num_val=100, size=128, dense_objects=None):
    """Train and val splits with independent seeds derived from ``seed``; ``dense_objects``
    (min, max) objects per image for the dense variant."""
    return (write_split(folder, "train", num_train, seed * 2 + 1, size, dense_objects),
            write_split(folder, "val", num_val, seed * 2 + 2, size, dense_objects))
