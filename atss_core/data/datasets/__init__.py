from .coco import COCODataset
from .voc import PascalVOCDataset

__all__ = ["COCODataset", "PascalVOCDataset"]
