"""Image decoding with OpenCV, with errors that name the file."""
import os

import cv2


def read_image_bgr(path):
    """HxWx3 uint8 BGR array of the image at ``path``, as stored: the EXIF orientation is ignored,
    as PIL (the official loader) ignores it, since COCO boxes refer to the stored pixels."""
    if not os.path.isfile(path):
        raise FileNotFoundError("image not found: {}".format(path))
    image = cv2.imread(path, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION)
    if image is None:
        raise ValueError("could not decode image {} (corrupt or not an image)".format(path))
    return image
