#!/usr/bin/env python
"""How far our network input is from the official pipeline's, on real photographs.

    python tools/dev/compare_preprocessing.py [--images data/raccoon/JPEGImages] [--limit 200]

The official pipeline decodes with PIL, resizes with torchvision's ``F.resize`` on the PIL
image (Pillow's bilinear filter, antialiased when shrinking), converts with ``F.to_tensor``
and scales back to BGR 0..255. This tool builds that input with those library calls and
compares it, in grey levels of the normalised tensor, with ours (``build_transforms``) and with
the plain OpenCV INTER_LINEAR resize we used before, at the test size and at every scale of
the official multi-scale test (atss_dcnv2_X_101_64x4d_FPN_2x.yaml). Prints a table, and JSON
with --json.
"""
import argparse
import glob
import json
import os

import cv2
import numpy as np
import torch
import torchvision.transforms.functional as F
from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from atss_core.data.datasets.image_io import read_image_bgr
from atss_core.data.transforms import transforms as T

MEAN = [102.9801, 115.9465, 122.7717]
# (min size, max size): the test size, then the official multi-scale test's scales (the vote
# path caps scales below 800 at INPUT.MAX_SIZE_TEST, the others at BBOX_AUG.MAX_SIZE 3000)
SIZES = [(800, 1333)] + [(s, 1333) for s in (400, 500, 600, 640, 700)] + [
    (s, 3000) for s in (900, 1000, 1100, 1200, 1300, 1400, 1800)]


def official_input(path, min_size, max_size):
    image = Image.open(path).convert("RGB")
    h, w = T.Resize(min_size, max_size).get_size(image.size)
    tensor = F.to_tensor(F.resize(image, [h, w]))[[2, 1, 0]] * 255
    return F.normalize(tensor, mean=MEAN, std=[1.0, 1.0, 1.0])


def our_input(path, min_size, max_size, opencv=False):
    image = read_image_bgr(path)
    resize = T.Resize(min_size, max_size)
    if opencv:
        h, w = resize.get_size((image.shape[1], image.shape[0]))
        image = cv2.resize(image, (w, h), interpolation=cv2.INTER_LINEAR)
    else:
        image, _ = resize(image)
    tensor, _ = T.ToTensor()(image)
    return T.Normalize(MEAN, [1.0, 1.0, 1.0])(tensor)[0]


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--images", default=os.path.join(ROOT, "data", "raccoon", "JPEGImages"))
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--json", help="also write the table here")
    args = parser.parse_args(argv)
    paths = sorted(glob.glob(os.path.join(args.images, "*.jpg")))[:args.limit]
    if not paths:
        raise SystemExit("no .jpg images in {}".format(args.images))
    rows = []
    for min_size, max_size in SIZES:
        ours_max, opencv_max, opencv_mean, shrunk = 0.0, 0.0, 0.0, 0
        for path in paths:
            reference = official_input(path, min_size, max_size)
            ours = our_input(path, min_size, max_size)
            opencv = our_input(path, min_size, max_size, opencv=True)
            if ours.shape != reference.shape:
                raise SystemExit("{}: shape {} vs official {}".format(path, tuple(ours.shape), tuple(reference.shape)))
            ours_max = max(ours_max, (ours - reference).abs().max().item())
            diff = (opencv - reference).abs()
            opencv_max = max(opencv_max, diff.max().item())
            opencv_mean += diff.mean().item() / len(paths)
            with Image.open(path) as im:
                shrunk += int(min(im.size) > min_size)
        rows.append({"min_size": min_size, "max_size": max_size, "images_shrunk": shrunk,
                     "ours_max_diff": ours_max, "opencv_max_diff": opencv_max, "opencv_mean_diff": opencv_mean})
        print("{:>5} / {:<5} shrunk {:>3}/{}   ours vs official: max {:.4g}   OpenCV INTER_LINEAR vs official: "
              "max {:.1f}, mean {:.3f}".format(min_size, max_size, shrunk, len(paths), ours_max, opencv_max,
                                               opencv_mean))
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"images": len(paths), "rows": rows}, f, indent=1)


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
