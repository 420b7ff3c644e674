"""COCO-format detection dataset (json annotations + an image folder)."""
import contextlib
import io
import json
import logging
import math
import os

import torch
from pycocotools.coco import COCO

from atss_core.structures.bounding_box import BoxList

from .ignore_regions import with_ignore_regions
from .image_io import UnreadableImageError, UnreadableImagePolicy, check_images_exist, read_image_bgr


def _has_only_empty_bbox(anno):
    return all(any(v <= 1 for v in obj["bbox"][2:]) for obj in anno)


def has_valid_annotation(anno):
    """An image is usable for training when it has at least one box wider and taller than 1 pixel."""
    return len(anno) > 0 and not _has_only_empty_bbox(anno)


class COCODataset(torch.utils.data.Dataset):
    """Items are (image, target BoxList with "labels", index).

    Category ids are mapped to contiguous labels 1..C (``json_category_id_to_contiguous_id``
    and back). With ``remove_images_without_annotations`` (training, the official default)
    images without a usable box are dropped; without it they stay, and a training set counts
    them in its log. Crowd boxes are never targets; with ``ignore_regions`` the loaded items
    carry them as ignore regions (ignore_regions.py). Test datasets keep every image."""

    def __init__(self, ann_file, root, remove_images_without_annotations, transforms=None, skip_unreadable=False,
                 exif_orientation=False, plus_one=1, ignore_regions=False):
        self.exif_orientation = exif_orientation
        self.plus_one = plus_one
        self.ignore_regions = ignore_regions
        if not os.path.isfile(ann_file):
            raise FileNotFoundError("COCO annotation file not found: {}".format(ann_file))
        if not os.path.isdir(root):
            raise FileNotFoundError("COCO image folder not found: {}".format(root))
        self.coco = COCO()
        self.coco.dataset = load_coco_json(ann_file)
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco.createIndex()
        self.root = root
        self.ann_file = ann_file
        self.ids = sorted(self.coco.imgs.keys())
        if remove_images_without_annotations:
            kept = [i for i in self.ids
                    if has_valid_annotation(self.coco.loadAnns(self.coco.getAnnIds(imgIds=i, iscrowd=None)))]
            if len(kept) < len(self.ids):
                logging.getLogger(__name__).info("%s: %d of %d images have no usable box and are not used for "
                                                 "training", ann_file, len(self.ids) - len(kept), len(self.ids))
            self.ids = kept
        check_images_exist([os.path.join(root, self.coco.imgs[i]["file_name"]) for i in self.ids],
                           "{} (image folder {})".format(ann_file, root))
        self._unreadable = UnreadableImagePolicy(skip=skip_unreadable)
        self.categories = {cat["id"]: cat["name"] for cat in self.coco.cats.values()}
        # contiguous ids in the order of the json "categories" list (as the official code): the
        # class channels of a checkpoint follow it
        self.json_category_id_to_contiguous_id = {v: i + 1 for i, v in enumerate(self.coco.getCatIds())}
        self.contiguous_category_id_to_json_id = {v: k for k, v in self.json_category_id_to_contiguous_id.items()}
        self.id_to_img_map = dict(enumerate(self.ids))
        self._transforms = transforms

    def __len__(self):
        return len(self.ids)

    def get_img_info(self, index):
        """The COCO image record (file_name, width, height, id) of item ``index``."""
        return self.coco.imgs[self.id_to_img_map[index]]

    def get_groundtruth(self, index, crowd=False):
        """The objects of item ``index`` (xyxy, "labels"); with ``crowd``, its crowd boxes instead."""
        info = self.get_img_info(index)
        anno = [obj for obj in self.coco.loadAnns(self.coco.getAnnIds(imgIds=info["id"], iscrowd=None))
                if bool(obj.get("iscrowd", 0)) == crowd]
        boxes = torch.as_tensor([obj["bbox"] for obj in anno], dtype=torch.float32).reshape(-1, 4)
        target = BoxList(boxes, (info["width"], info["height"]), mode="xywh", plus_one=self.plus_one)
        target = target.convert("xyxy")
        labels = [self.json_category_id_to_contiguous_id[obj["category_id"]] for obj in anno]
        target.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        return target.clip_to_image(remove_empty=True)

    def training_target(self, index):
        """What training sees of item ``index``: its objects, and its crowds as ignore regions
        when the dataset keeps them."""
        target = self.get_groundtruth(index)
        if self.ignore_regions:
            target = with_ignore_regions(target, self.get_groundtruth(index, crowd=True))
        return target

    @property
    def num_categories(self):
        return len(self.json_category_id_to_contiguous_id)

    def class_names(self):
        """["__background__", name of label 1, ...]: what checkpoints record."""
        return ["__background__"] + [self.categories[self.contiguous_category_id_to_json_id[label]]
                                     for label in range(1, self.num_categories + 1)]

    def image_path(self, index):
        return os.path.join(self.root, self.get_img_info(index)["file_name"])

    def __getitem__(self, index):
        return self._unreadable.load(len(self), index, self._load_item)

    def _load_item(self, index):
        info = self.get_img_info(index)
        image = read_image_bgr(self.image_path(index), self.exif_orientation)
        if (image.shape[1], image.shape[0]) != (info["width"], info["height"]):
            turned = self.exif_orientation and (image.shape[0], image.shape[1]) == (info["width"], info["height"])
            raise UnreadableImageError("{}: the annotation says {}x{} but the image is {}x{}{}".format(
                info["file_name"], info["width"], info["height"], image.shape[1], image.shape[0],
                " once its EXIF orientation is applied (INPUT.EXIF_ORIENTATION True); the annotation's boxes "
                "refer to the stored pixels" if turned else ""))
        target = self.training_target(index)
        if self._transforms is not None:
            image, target = self._transforms(image, target)
        return image, target, index


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _fail(ann_file, problem):
    raise ValueError("COCO annotation file {}: {}".format(ann_file, problem))


def load_coco_json(ann_file):
    """The parsed annotation file, checked for what training and evaluation rely on: the
    images, categories and annotations lists, each box as 4 numbers, every annotation's
    image and category among those listed. Boxes of zero or negative size are counted and
    reported (they are not targets)."""
    try:
        with open(ann_file) as f:
            data = json.load(f)
    except (ValueError, UnicodeDecodeError) as error:
        raise ValueError("could not parse COCO annotation file {}: {}".format(ann_file, error)) from None
    if not isinstance(data, dict):
        _fail(ann_file, "expected a json object with 'images', 'annotations' and 'categories'")
    for key in ("images", "categories"):
        if not isinstance(data.get(key), list):
            _fail(ann_file, "'{}' is missing or not a list".format(key))
    annotations = data.setdefault("annotations", [])
    if not isinstance(annotations, list):
        _fail(ann_file, "'annotations' is not a list")
    for image in data["images"]:
        if not isinstance(image, dict) or not all(k in image for k in ("id", "file_name", "width", "height")):
            _fail(ann_file, "an image entry lacks one of id, file_name, width, height: {!r}".format(image))
        if not _is_int(image["id"]) or not isinstance(image["file_name"], str) or not image["file_name"]:
            _fail(ann_file, "image entry {!r} needs an integer id and a file_name".format(image))
        if not all(_is_number(image[k]) and image[k] > 0 for k in ("width", "height")):
            _fail(ann_file, "image {!r} has width {!r} and height {!r}; expected positive numbers".format(
                image["file_name"], image["width"], image["height"]))
    for category in data["categories"]:
        if not isinstance(category, dict) or "id" not in category or "name" not in category:
            _fail(ann_file, "a category entry lacks its id or name: {!r}".format(category))
        if not _is_int(category["id"]) or not isinstance(category["name"], str):
            _fail(ann_file, "category entry {!r} needs an integer id and a name".format(category))
    image_ids = {image["id"] for image in data["images"]}
    category_ids = {category["id"] for category in data["categories"]}
    degenerate = 0
    for ann in annotations:
        if not isinstance(ann, dict) or not all(k in ann for k in ("id", "image_id", "category_id", "bbox")):
            _fail(ann_file, "an annotation lacks one of id, image_id, category_id, bbox: {!r}".format(ann))
        if not all(_is_int(ann[k]) for k in ("id", "image_id", "category_id")):
            _fail(ann_file, "annotation {!r} needs integer id, image_id and category_id".format(ann))
        box = ann["bbox"]
        if not (isinstance(box, list) and len(box) == 4 and all(_is_number(v) for v in box)):
            _fail(ann_file, "annotation {} has bbox {!r}; expected [x, y, width, height]".format(ann["id"], box))
        if ann["image_id"] not in image_ids:
            _fail(ann_file, "annotation {} refers to image_id {!r}, which is not among the images".format(
                ann["id"], ann["image_id"]))
        if ann["category_id"] not in category_ids:
            _fail(ann_file, "annotation {} has category_id {!r}, which is not among the categories {}".format(
                ann["id"], ann["category_id"], sorted(category_ids)))
        ann.setdefault("area", float(box[2]) * float(box[3]))  # pycocotools' evaluation reads both
        ann.setdefault("iscrowd", 0)
        # the xyxy targets (x + w - 1, legacy +1 convention) drop boxes without positive extent
        degenerate += not ann.get("iscrowd") and (box[2] <= 1 or box[3] <= 1)
    if degenerate:
        logging.getLogger(__name__).warning("%s: %d box(es) of width or height <= 1 pixel (zero or negative "
                                            "included) are ignored", ann_file, degenerate)
    return data
