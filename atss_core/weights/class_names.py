"""The class names a weights file records, in label order with "__background__" first: ours
under "class_names", mmdetection 2.x's under meta["CLASSES"], 3.x's under
meta["dataset_meta"]["classes"] (both without the background). None when a file has none (the
official zoo, Caffe2 and torchvision files)."""


def _names(value):
    if isinstance(value, (list, tuple)) and value and all(isinstance(name, str) for name in value):
        return list(value)
    return None


def mmdet_class_names(checkpoint):
    meta = checkpoint.get("meta") if isinstance(checkpoint, dict) else None
    if not isinstance(meta, dict):
        return None
    dataset_meta = meta.get("dataset_meta")
    names = _names(dataset_meta.get("classes")) if isinstance(dataset_meta, dict) else None
    names = names or _names(meta.get("CLASSES"))
    return ["__background__"] + names if names else None


def recorded_class_names(checkpoint):
    if not isinstance(checkpoint, dict):
        return None
    return _names(checkpoint.get("class_names")) or mmdet_class_names(checkpoint)
