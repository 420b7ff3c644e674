"""The official path of the demo predictor; it lives in atss_core/engine/predictor.py."""
from atss_core.engine.predictor import COCO_CLASSES, ATSSDemo, default_class_names  # noqa: F401
