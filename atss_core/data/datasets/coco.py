"""COCO-format detection dataset (json annotations + an image folder)."""
import contextlib
import io
import os

import torch
from pycocotools.coco import COCO

from atss_core.structures.bounding_box import BoxList

from .image_io import read_image_bgr


def _has_only_empty_bbox(anno):
    return all(any(v <= 1 for v in obj["bbox"][2:]) for obj in anno)


def has_valid_annotation(anno):
    """An image is usable for training when it has at least one box wider and taller than 1 pixel."""
    return len(anno) > 0 and not _has_only_empty_bbox(anno)


class COCODataset(torch.utils.data.Dataset):
    """Items are (image, target BoxList with "labels", index).

    Category ids are mapped to contiguous labels 1..C (``json_category_id_to_contiguous_id``
    and back). With ``remove_images_without_annotations`` (training) images without a usable
    box are dropped; crowd boxes are never targets. Test datasets keep every image."""

    def __init__(self, ann_file, root, remove_images_without_annotations, transforms=None):
        if not os.path.isfile(ann_file):
            raise FileNotFoundError("COCO annotation file not found: {}".format(ann_file))
        if not os.path.isdir(root):
            raise FileNotFoundError("COCO image folder not found: {}".format(root))
        with contextlib.redirect_stdout(io.StringIO()):  # pycocotools prints progress
            self.coco = COCO(ann_file)
        self.root = root
        self.ann_file = ann_file
        self.ids = sorted(self.coco.imgs.keys())
        if remove_images_without_annotations:
            self.ids = [i for i in self.ids
                        if has_valid_annotation(self.coco.loadAnns(self.coco.getAnnIds(imgIds=i, iscrowd=None)))]
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

    def get_groundtruth(self, index):
        info = self.get_img_info(index)
        anno = [obj for obj in self.coco.loadAnns(self.coco.getAnnIds(imgIds=info["id"], iscrowd=None))
                if obj.get("iscrowd", 0) == 0]
        boxes = torch.as_tensor([obj["bbox"] for obj in anno], dtype=torch.float32).reshape(-1, 4)
        target = BoxList(boxes, (info["width"], info["height"]), mode="xywh").convert("xyxy")
        labels = [self.json_category_id_to_contiguous_id[obj["category_id"]] for obj in anno]
        target.add_field("labels", torch.tensor(labels, dtype=torch.int64))
        return target.clip_to_image(remove_empty=True)

    def __getitem__(self, index):
        info = self.get_img_info(index)
        image = read_image_bgr(os.path.join(self.root, info["file_name"]))
        if (image.shape[1], image.shape[0]) != (info["width"], info["height"]):
            raise ValueError("{}: the annotation says {}x{} but the image is {}x{}".format(
                info["file_name"], info["width"], info["height"], image.shape[1], image.shape[0]))
        target = self.get_groundtruth(index)
        if self._transforms is not None:
            image, target = self._transforms(image, target)
        return image, target, index
