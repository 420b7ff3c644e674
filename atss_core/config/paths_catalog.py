"""Where named datasets and weights live: dataset names -> local paths, catalog:// weight
names -> their download address and their place in the weights cache.

Datasets: the official names (coco_2017_train, voc_2007_test, ...) resolve under the data
root ``$ATSS_DATA_DIR`` (default: ./datasets), laid out as in the official code
(coco/train2017, coco/annotations/instances_train2017.json, voc/VOC2007, ...). Any other
dataset is named by its paths directly in DATASETS.TRAIN / DATASETS.TEST:
``coco:<image folder>:<annotation json>`` or ``voc:<VOC folder>:<split>``.

The small real-photo set shipped with the repository (data/raccoon, one class) is registered
as raccoon_train / raccoon_val (COCO json) and raccoon_voc_train / raccoon_voc_val (VOC xml);
those names resolve inside the repository, whatever the data root.

``catalog://ImageNetPretrained/MSRA/R-50`` is cached as ``$ATSS_WEIGHTS_DIR/ImageNetPretrained/MSRA/R-50.pkl``
(default directory: ~/.cache/atss_core/weights) and downloaded from Detectron's address there
(``$ATSS_CATALOG_URL`` replaces that address, for mirrors) when it is missing (atss_core/weights).
"""
import os

SHIPPED_DATA_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "data")
DEFAULT_WEIGHTS_DIR = os.path.join(os.path.expanduser("~"), ".cache", "atss_core", "weights")
# the official (Detectron) download location; ATSS_CATALOG_URL replaces it (a mirror)
DETECTRON_URL = "https://dl.fbaipublicfiles.com/detectron"
CATALOG_URL_ENV = "ATSS_CATALOG_URL"


def dataset_folder_name(dataset_name):
    """A dataset name as one folder name (coco:<dir>:<json> names hold slashes and colons)."""
    return dataset_name.replace("/", "_").replace(":", "_")


def _coco(img_dir, ann_file):
    return {"img_dir": img_dir, "ann_file": ann_file}


class DatasetCatalog:
    DATASETS = {
        "coco_2017_train": _coco("coco/train2017", "coco/annotations/instances_train2017.json"),
        "coco_2017_val": _coco("coco/val2017", "coco/annotations/instances_val2017.json"),
        "coco_2017_test_dev": _coco("coco/test2017", "coco/annotations/image_info_test-dev2017.json"),
        "coco_2014_train": _coco("coco/train2014", "coco/annotations/instances_train2014.json"),
        "coco_2014_val": _coco("coco/val2014", "coco/annotations/instances_val2014.json"),
        "coco_2014_minival": _coco("coco/val2014", "coco/annotations/instances_minival2014.json"),
        "coco_2014_valminusminival": _coco("coco/val2014", "coco/annotations/instances_valminusminival2014.json"),
        "voc_2007_train": {"data_dir": "voc/VOC2007", "split": "train"},
        "voc_2007_val": {"data_dir": "voc/VOC2007", "split": "val"},
        "voc_2007_test": {"data_dir": "voc/VOC2007", "split": "test"},
        "voc_2012_train": {"data_dir": "voc/VOC2012", "split": "train"},
        "voc_2012_val": {"data_dir": "voc/VOC2012", "split": "val"},
        "voc_2012_test": {"data_dir": "voc/VOC2012", "split": "test"},
    }
    # shipped in the repository: resolved under SHIPPED_DATA_DIR
    SHIPPED = {
        "raccoon_train": _coco("raccoon/JPEGImages", "raccoon/annotations/instances_train.json"),
        "raccoon_val": _coco("raccoon/JPEGImages", "raccoon/annotations/instances_val.json"),
        "raccoon_voc_train": {"data_dir": "raccoon", "split": "train"},
        "raccoon_voc_val": {"data_dir": "raccoon", "split": "val"},
    }

    @staticmethod
    def data_dir():
        return os.environ.get("ATSS_DATA_DIR", "datasets")

    @staticmethod
    def get(name):
        """{"factory": dataset class name, "args": constructor arguments} for a dataset name."""
        if name.startswith("coco:") or name.startswith("voc:"):
            kind, first, second = (name.split(":", 2) + ["", ""])[:3]
            if not first or not second:
                raise ValueError("dataset {!r}: expected coco:<image folder>:<annotation json> or "
                                 "voc:<VOC folder>:<split>".format(name))
            if kind == "coco":
                return {"factory": "COCODataset", "args": {"root": first, "ann_file": second}}
            return {"factory": "PascalVOCDataset", "args": {"data_dir": first, "split": second}}
        if name in DatasetCatalog.SHIPPED:
            attrs, root = DatasetCatalog.SHIPPED[name], SHIPPED_DATA_DIR
        elif name in DatasetCatalog.DATASETS:
            attrs, root = DatasetCatalog.DATASETS[name], DatasetCatalog.data_dir()
        else:
            known = sorted(DatasetCatalog.DATASETS) + sorted(DatasetCatalog.SHIPPED)
            raise KeyError("unknown dataset {!r}; known: {} (or give paths: coco:<images>:<json>, "
                           "voc:<folder>:<split>)".format(name, ", ".join(known)))
        if "ann_file" in attrs:
            return {"factory": "COCODataset", "args": {"root": os.path.join(root, attrs["img_dir"]),
                                                       "ann_file": os.path.join(root, attrs["ann_file"])}}
        return {"factory": "PascalVOCDataset", "args": {"data_dir": os.path.join(root, attrs["data_dir"]),
                                                        "split": attrs["split"]}}


class ModelCatalog:
    # catalog name -> the file's path under DETECTRON_URL (the official catalog's addresses)
    DOWNLOAD_PATHS = {
        "ImageNetPretrained/MSRA/R-50": "ImageNetPretrained/MSRA/R-50.pkl",
        "ImageNetPretrained/MSRA/R-101": "ImageNetPretrained/MSRA/R-101.pkl",
        "ImageNetPretrained/MSRA/R-50-GN": "ImageNetPretrained/47261647/R-50-GN.pkl",
        "ImageNetPretrained/MSRA/R-101-GN": "ImageNetPretrained/47592356/R-101-GN.pkl",
        "ImageNetPretrained/FAIR/20171220/X-101-32x8d": "ImageNetPretrained/20171220/X-101-32x8d.pkl",
        "ImageNetPretrained/FAIR/20171220/X-101-64x4d": "ImageNetPretrained/FBResNeXt/X-101-64x4d.pkl",
    }
    KNOWN = tuple(DOWNLOAD_PATHS)

    @staticmethod
    def weights_dir():
        return os.environ.get("ATSS_WEIGHTS_DIR", DEFAULT_WEIGHTS_DIR)

    @staticmethod
    def _check(name):
        if name not in ModelCatalog.KNOWN:
            raise KeyError("unknown catalog:// weights {!r}; known: {}".format(name, ", ".join(ModelCatalog.KNOWN)))

    @staticmethod
    def get(name):
        """The cache path of catalog entry ``name`` (without the catalog:// prefix)."""
        ModelCatalog._check(name)
        return os.path.join(ModelCatalog.weights_dir(), name + ".pkl")

    @staticmethod
    def url(name):
        """The download address of catalog entry ``name``."""
        ModelCatalog._check(name)
        base = os.environ.get(CATALOG_URL_ENV, "") or DETECTRON_URL
        return base.rstrip("/") + "/" + ModelCatalog.DOWNLOAD_PATHS[name]
