"""Pascal VOC-format detection dataset (JPEGImages/, Annotations/*.xml, ImageSets/Main/<split>.txt)."""
import os
import xml.etree.ElementTree as ET

import torch

from atss_core.structures.bounding_box import BoxList

from .image_io import read_image_bgr

VOC_CLASSES = ("__background__", "aeroplane", "bicycle", "bird", "boat", "bottle", "bus", "car", "cat", "chair", "cow",
               "diningtable", "dog", "horse", "motorbike", "person", "pottedplant", "sheep", "sofa", "train",
               "tvmonitor")


class PascalVOCDataset(torch.utils.data.Dataset):
    """Items are (image, target BoxList with "labels" and "difficult", index).

    VOC corners are 1-based and inclusive: 1 is subtracted (the official conversion).
    ``classes``: names with "__background__" first; by default the 20 VOC classes, or, when an
    annotation names another class, the sorted set of names found in the split. Difficult
    objects are dropped unless ``use_difficult`` (evaluation reads them from get_groundtruth)."""

    def __init__(self, data_dir, split, use_difficult=False, transforms=None, classes=None):
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

    def _parse(self, image_id):
        path = os.path.join(self.root, "Annotations", image_id + ".xml")
        if not os.path.isfile(path):
            raise FileNotFoundError("VOC annotation not found: {}".format(path))
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as error:
            raise ValueError("could not parse VOC annotation {}: {}".format(path, error)) from error
        size = root.find("size")
        objects = []
        for obj in root.iter("object"):
            box = obj.find("bndbox")
            difficult = obj.find("difficult")
            objects.append({
                "name": obj.find("name").text.lower().strip(),
                "box": [float(box.find(k).text) - 1 for k in ("xmin", "ymin", "xmax", "ymax")],
                "difficult": difficult is not None and int(difficult.text) == 1,
            })
        return {"width": int(size.find("width").text), "height": int(size.find("height").text), "objects": objects}

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
                         (anno["width"], anno["height"]), mode="xyxy")
        target.add_field("labels", torch.tensor([self.class_to_ind[o["name"]] for o in objects], dtype=torch.int64))
        target.add_field("difficult", torch.tensor([o["difficult"] for o in objects], dtype=torch.bool))
        return target

    def map_class_id_to_class_name(self, class_id):
        return self.classes[class_id]

    def __getitem__(self, index):
        image = read_image_bgr(os.path.join(self.root, "JPEGImages", self.ids[index] + ".jpg"))
        target = self.get_groundtruth(index).clip_to_image(remove_empty=True)
        if self._transforms is not None:
            image, target = self._transforms(image, target)
        return image, target, index
