"""Pascal VOC-format detection dataset (JPEGImages/, Annotations/*.xml, ImageSets/Main/<split>.txt)."""
import logging
import math
import os
import xml.etree.ElementTree as ET

import torch

from atss_core.structures.bounding_box import BoxList

from .ignore_regions import with_ignore_regions
from .image_io import UnreadableImagePolicy, check_images_exist, read_image_bgr

VOC_CLASSES = ("__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


class PascalVOCDataset(torch.utils.data.Dataset):
    """Items are (image, target BoxList with "labels" and "difficult", index).

    VOC corners are 1-based and inclusive: 1 is subtracted (the official conversion).
    ``classes``: names with "__background__" first; by default the 20 VOC classes, or, when an
    annotation names another class, the sorted set of names found in the split. Difficult
    objects are dropped unless ``use_difficult`` (evaluation reads them from get_groundtruth);
    with ``ignore_regions`` the loaded items carry the dropped ones as ignore regions
    (ignore_regions.py). Images without objects are kept, as officially."""

    def __init__(self, data_dir, split, use_difficult=False, transforms=None, classes=None, skip_unreadable=False,
                 exif_orientation=False, plus_one=1, ignore_regions=False):
        self.exif_orientation = exif_orientation
        self.ignore_regions = ignore_regions
        self.plus_one = plus_one
        if not os.path.isdir(data_dir):
            raise FileNotFoundError("VOC dataset folder not found: {}".format(data_dir))
        self.root = data_dir
        self.image_set = split
        self.keep_difficult = use_difficult
        self._transforms = transforms
        split_file = os.path.join(data_dir, "ImageSets", "Main", "{}.txt".format(split))
        if not os.path.isfile(split_file):
            raise FileNotFoundError("VOC split file not found: {}".format(split_file))
        with open(split_file) as f:
            self.ids = [line.strip() for line in f if line.strip()]
        self.id_to_img_map = dict(enumerate(self.ids))
        self._annotations = {i: self._parse(i) for i in self.ids}
        if classes is None:
            names = sorted({obj["name"] for anno in self._annotations.values() for obj in anno["objects"]})
            classes = VOC_CLASSES if set(names) <= set(VOC_CLASSES) else ("__background__",) + tuple(names)
        self.classes = tuple(classes)
        self.class_to_ind = {name: i for i, name in enumerate(self.classes)}
        self.categories = dict(enumerate(self.classes))
        check_images_exist([self._image_path(i) for i in self.ids], "{} split {}".format(data_dir, split))
        # the targets drop boxes without positive extent (after the 1 subtracted above)
        degenerate = sum(o["box"][2] <= o["box"][0] or o["box"][3] <= o["box"][1]
                         for anno in self._annotations.values() for o in anno["objects"])
        if degenerate:
            logging.getLogger(__name__).warning("%s split %s: %d box(es) with xmax <= xmin or ymax <= ymin are "
                                                "ignored", data_dir, split, degenerate)
        self._unreadable = UnreadableImagePolicy(skip=skip_unreadable)

    def _image_path(self, image_id):
        return os.path.join(self.root, "JPEGImages", image_id + ".jpg")

    def image_path(self, index):
        return self._image_path(self.ids[index])

    @property
    def num_categories(self):
        return len(self.classes) - 1  # "__background__" is not a category

    def class_names(self):
        """["__background__", name of label 1, ...]: what checkpoints record."""
        return list(self.classes)

    def _parse(self, image_id):
        path = os.path.join(self.root, "Annotations", image_id + ".xml")
        if not os.path.isfile(path):
            raise FileNotFoundError("VOC annotation not found: {}".format(path))
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as error:
            raise ValueError("could not parse VOC annotation {}: {}".format(path, error)) from error

        def text(element, tag):
            found = element.find(tag)
            if found is None or found.text is None or not found.text.strip():
                raise ValueError("VOC annotation {}: <{}> is missing in <{}>".format(path, tag, element.tag))
            return found.text.strip()

        def number(element, tag, kind):
            value = text(element, tag)
            try:
                parsed = float(value)
            except ValueError:
                parsed = math.nan
            if not math.isfinite(parsed):
                raise ValueError("VOC annotation {}: <{}> is {!r}, not a number".format(path, tag, value))
            return kind(parsed)

        size = root.find("size")
        if size is None:
            raise ValueError("VOC annotation {}: <size> is missing".format(path))
        objects = []
        for obj in root.iter("object"):
            box = obj.find("bndbox")
            if box is None:
                raise ValueError("VOC annotation {}: an <object> has no <bndbox>".format(path))
            difficult = obj.find("difficult")
            objects.append({
                "name": text(obj, "name").lower(),
                "box": [number(box, k, float) - 1 for k in ("xmin", "ymin", "xmax", "ymax")],
                "difficult": difficult is not None and difficult.text is not None and difficult.text.strip() == "1",
            })
        width, height = number(size, "width", int), number(size, "height", int)
        if width <= 0 or height <= 0:
            raise ValueError("VOC annotation {}: image size {}x{} is not positive".format(path, width, height))
        return {"width": width, "height": height, "objects": objects}

    def __len__(self):
        return len(self.ids)

    def get_img_info(self, index):
        anno = self._annotations[self.ids[index]]
        return {"width": anno["width"], "height": anno["height"], "file_name": self.ids[index] + ".jpg"}

    def get_groundtruth(self, index, keep_difficult=None):
        keep_difficult = self.keep_difficult if keep_difficult is None else keep_difficult
        anno = self._annotations[self.ids[index]]
        objects = [o for o in anno["objects"] if keep_difficult or not o["difficult"]]
        unknown = sorted({o["name"] for o in objects} - set(self.class_to_ind))
        if unknown:
            raise ValueError("{}: classes {} are not in this dataset's classes".format(self.ids[index], unknown))
        target = BoxList(torch.tensor([o["box"] for o in objects], dtype=torch.float32).reshape(-1, 4),
                         (anno["width"], anno["height"]), mode="xyxy", plus_one=self.plus_one)
        target.add_field("labels", torch.tensor([self.class_to_ind[o["name"]] for o in objects], dtype=torch.int64))
        target.add_field("difficult", torch.tensor([o["difficult"] for o in objects], dtype=torch.bool))
        return target

    def training_target(self, index):
        """What training sees of item ``index``: its objects (difficult ones as use_difficult
        says), and the difficult ones left out as ignore regions when the dataset keeps them."""
        target = self.get_groundtruth(index)
        if self.ignore_regions and not self.keep_difficult:
            everything = self.get_groundtruth(index, keep_difficult=True)
            target = with_ignore_regions(target, everything[everything.get_field("difficult")])
        return target.clip_to_image(remove_empty=True)

    def map_class_id_to_class_name(self, class_id):
        return self.classes[class_id]

    def __getitem__(self, index):
        return self._unreadable.load(len(self), index, self._load_item)

    def _load_item(self, index):
        image = read_image_bgr(self._image_path(self.ids[index]), self.exif_orientation)
        target = self.training_target(index)
        if self._transforms is not None:
            image, target = self._transforms(image, target)
        return image, target, index
