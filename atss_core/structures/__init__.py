from .bounding_box import BoxList
from .image_list import ImageList, to_image_list

__all__ = ["BoxList", "ImageList", "to_image_list"]
