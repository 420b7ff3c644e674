"""Image decoding with OpenCV, with errors that name the file, and the training datasets'
policy for images that cannot be read (skipped with a counted warning)."""
import logging
import os

import cv2
import numpy as np

_JPEG_START, _JPEG_END = b"\xff\xd8", b"\xff\xd9"
_JPEG_START_OF_SCAN = 0xDA
_JPEG_STANDALONE = {0x01} | set(range(0xD0, 0xD8))  # markers without a length field


def jpeg_is_truncated(data):
    """Whether JPEG bytes lack the end marker after the main image's first scan. The header
    segments are walked by their lengths (an EXIF thumbnail, with its own end marker, sits
    inside one), so data appended after a complete image (camera trailers, padding) is fine."""
    pos = 2
    while pos + 4 <= len(data):
        if data[pos] != 0xFF:
            return False  # not a layout this check understands: let the decoder judge
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker == _JPEG_START_OF_SCAN:
            return data.find(_JPEG_END, pos) < 0  # entropy-coded data never holds FF D9
        if marker in _JPEG_STANDALONE:
            pos += 2
            continue
        pos += 2 + int.from_bytes(data[pos + 2:pos + 4], "big")
    return True  # the headers end before any image data


class UnreadableImageError(ValueError):
    """An image file that exists but cannot be used: corrupt, truncated, not an image, or not
    the size its annotation gives."""


def read_image_bgr(path, exif_orientation=False):
    """HxWx3 uint8 BGR array of the image at ``path``, as stored: the EXIF orientation is ignored,
    as PIL (the official loader) ignores it, since COCO boxes refer to the stored pixels;
    ``exif_orientation`` applies it (OpenCV's default, which mmdetection uses).
    A JPEG without its end marker is refused: OpenCV would return it with the missing part grey."""
    if not os.path.isfile(path):
        raise FileNotFoundError("image not found: {}".format(path))
    with open(path, "rb") as f:
        data = f.read()
    if data.startswith(_JPEG_START) and jpeg_is_truncated(data):
        raise UnreadableImageError("image {} is truncated (its JPEG end marker is missing)".format(path))
    flags = cv2.IMREAD_COLOR if exif_orientation else cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION
    image = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), flags)
    if image is None:
        raise UnreadableImageError("could not decode image {} (corrupt or not an image)".format(path))
    return image


class UnreadableImagePolicy:
    """Training skips an unreadable image and takes the next readable one in dataset order (so
    a run stays reproducible), logging each skip with a running count; evaluation stops with
    the error, since a skipped image would silently change the metrics."""

    def __init__(self, skip):
        self.skip = skip
        self.skipped = 0

    def load(self, dataset_length, index, load_item):
        for offset in range(dataset_length):
            position = (index + offset) % dataset_length
            try:
                return load_item(position)
            except UnreadableImageError as error:
                if not self.skip:
                    raise
                self.skipped += 1
                logging.getLogger(__name__).warning("skipped: %s (%d unreadable image(s) skipped so far in this "
                                                    "process)", error, self.skipped)
        raise ValueError("none of the {} images of the dataset can be read".format(dataset_length))


def check_images_exist(paths, what):
    """Start-up check: every image file is there (a missing one would otherwise stop the run
    when it is first drawn, possibly hours in)."""
    missing = [p for p in paths if not os.path.isfile(p)]
    if missing:
        raise FileNotFoundError("{} of the {} images of {} are missing, e.g. {}".format(
            len(missing), len(paths), what, ", ".join(missing[:3])))


IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp")


def list_images(path):
    """[path] for an image file; the sorted images (by extension) of a folder."""
    if os.path.isfile(path):
        return [path]
    if os.path.isdir(path):
        files = sorted(os.path.join(path, name) for name in os.listdir(path) if name.lower().endswith(IMAGE_EXTENSIONS))
        if not files:
            raise FileNotFoundError("no image ({}) in {}".format(", ".join(IMAGE_EXTENSIONS), path))
        return files
    raise FileNotFoundError("input not found: {}".format(path))


def open_video(video_path="", camera=0):
    """(an opened cv2.VideoCapture, its description) for a video file, else the camera index."""
    if video_path:
        if not os.path.isfile(video_path):
            raise FileNotFoundError("video file not found: {}".format(video_path))
        capture, what = cv2.VideoCapture(video_path), video_path
    else:
        capture, what = cv2.VideoCapture(camera), "camera {}".format(camera)
    if not capture.isOpened():
        raise ValueError("could not open {} (no such camera, or an unreadable video)".format(what))
    return capture, what
