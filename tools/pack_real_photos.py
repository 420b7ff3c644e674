"""Packs the raccoon photographs of ../shared/data/raccoon into the small copy shipped in
data/raccoon/: images whose longer side exceeds --max-side are downscaled (INTER_AREA, JPEG
quality --quality), the others are copied byte for byte; boxes follow the scaling. Writes
the VOC form (JPEGImages, Annotations, ImageSets/Main) and the COCO form
(annotations/instances_{train,val}.json), plus the source's README and LICENSE notes.

    python tools/pack_real_photos.py --source ../shared/data/raccoon --output data/raccoon
"""
import argparse
import json
import os
import shutil
import sys
import xml.etree.ElementTree as ET

import cv2

SPLITS = ("train", "val")


def scaled_box(xmin, ymin, xmax, ymax, sx, sy, width, height):
    """VOC 1-based inclusive corners -> the same after scaling the image by (sx, sy)."""
    x1 = int(round((xmin - 1) * sx)) + 1
    y1 = int(round((ymin - 1) * sy)) + 1
    x2 = min(int(round(xmax * sx)), width)
    y2 = min(int(round(ymax * sy)), height)
    return x1, y1, max(x2, x1), max(y2, y1)


def pack_image(source, name, output, max_side, quality):
    """Writes the image; returns (original (w, h), new (w, h))."""
    src = os.path.join(source, "JPEGImages", name + ".jpg")
    dst = os.path.join(output, "JPEGImages", name + ".jpg")
    image = cv2.imread(src, cv2.IMREAD_COLOR)
    if image is None:
        raise SystemExit("cannot decode {}".format(src))
    h, w = image.shape[:2]
    scale = min(1.0, float(max_side) / max(h, w))
    if scale == 1.0:
        shutil.copyfile(src, dst)
        return (w, h), (w, h)
    new_w, new_h = int(round(w * scale)), int(round(h * scale))
    cv2.imwrite(dst, cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_AREA),
                [cv2.IMWRITE_JPEG_QUALITY, quality])
    return (w, h), (new_w, new_h)


def pack_annotation(source, name, output, old_size, new_size):
    """Rewrites the VOC xml for the new size; returns [(x1, y1, x2, y2)] (1-based inclusive)."""
    tree = ET.parse(os.path.join(source, "Annotations", name + ".xml"))
    root = tree.getroot()
    (w, h), (new_w, new_h) = old_size, new_size
    root.find("size/width").text, root.find("size/height").text = str(new_w), str(new_h)
    path = root.find("path")
    if path is not None:  # the original author's local path says nothing useful
        root.remove(path)
    boxes = []
    for obj in root.iter("object"):
        bndbox = obj.find("bndbox")
        corners = [int(float(bndbox.find(k).text)) for k in ("xmin", "ymin", "xmax", "ymax")]
        corners = scaled_box(*corners, sx=new_w / w, sy=new_h / h, width=new_w, height=new_h)
        for key, value in zip(("xmin", "ymin", "xmax", "ymax"), corners):
            bndbox.find(key).text = str(value)
        boxes.append(corners)
    tree.write(os.path.join(output, "Annotations", name + ".xml"))
    return boxes


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", default=os.path.join("..", "shared", "data", "raccoon"))
    parser.add_argument("--output", default=os.path.join("data", "raccoon"))
    parser.add_argument("--max-side", type=int, default=512)
    parser.add_argument("--quality", type=int, default=90)
    args = parser.parse_args()
    if not os.path.isdir(os.path.join(args.source, "JPEGImages")):
        raise SystemExit("{} is not the raccoon dataset (no JPEGImages/ inside)".format(args.source))
    for sub in ("JPEGImages", "Annotations", os.path.join("ImageSets", "Main"), "annotations"):
        os.makedirs(os.path.join(args.output, sub), exist_ok=True)
    shutil.copyfile(os.path.join(args.source, "LICENSE"), os.path.join(args.output, "LICENSE"))
    total_bytes = 0
    for split in SPLITS:
        split_file = os.path.join(args.source, "ImageSets", "Main", split + ".txt")
        shutil.copyfile(split_file, os.path.join(args.output, "ImageSets", "Main", split + ".txt"))
        with open(split_file) as f:
            names = [line.strip() for line in f if line.strip()]
        images, annotations = [], []
        for image_id, name in enumerate(names, 1):
            old_size, new_size = pack_image(args.source, name, args.output, args.max_side, args.quality)
            total_bytes += os.path.getsize(os.path.join(args.output, "JPEGImages", name + ".jpg"))
            images.append({"id": image_id, "file_name": name + ".jpg", "width": new_size[0], "height": new_size[1]})
            for x1, y1, x2, y2 in pack_annotation(args.source, name, args.output, old_size, new_size):
                w, h = x2 - x1 + 1, y2 - y1 + 1
                annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": 1,
                                    "bbox": [x1 - 1, y1 - 1, w, h], "area": w * h, "iscrowd": 0})
        coco = {"images": images, "annotations": annotations,
                "categories": [{"id": 1, "name": "raccoon", "supercategory": "animal"}]}
        with open(os.path.join(args.output, "annotations", "instances_{}.json".format(split)), "w") as f:
            json.dump(coco, f)
        print("{}: {} images, {} boxes".format(split, len(images), len(annotations)))
    print("images: {:.1f} MB in {}".format(total_bytes / 1e6, args.output))
    return 0


if __name__ == "__main__":
    sys.exit(main())
