#!/usr/bin/env python
"""Writes the deterministic synthetic COCO-format dataset used by the quickstart.

    python tools/make_synthetic_dataset.py --output datasets/synthetic [--seed 0] [--train 400] [--val 100]
    python tools/make_synthetic_dataset.py --output datasets/synthetic_dense --dense 500 1000 --size 512 \
        --train 8 --val 2      # dense scenes: 500 to 1000 small objects per image

Use it in a config or on the command line as
    DATASETS.TRAIN "('coco:datasets/synthetic/train:datasets/synthetic/annotations/instances_train.json',)"
"""
import argparse
import time

from atss_core.data.synthetic import CLASSES, make_synthetic_dataset


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--output", default="datasets/synthetic")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--train", type=int, default=400, help="number of training images")
    parser.add_argument("--val", type=int, default=100, help="number of validation images")
    parser.add_argument("--size", type=int, default=128, help="image side in pixels")
    parser.add_argument("--dense", type=int, nargs=2, metavar=("MIN", "MAX"),
                        help="dense images: between MIN and MAX small objects each")
    args = parser.parse_args()
    if args.dense and not 1 <= args.dense[0] <= args.dense[1]:
        parser.error("--dense MIN MAX needs 1 <= MIN <= MAX, got {} {}".format(*args.dense))
    start = time.time()
    train_json, val_json = make_synthetic_dataset(args.output, args.seed, args.train, args.val, args.size,
                                                  dense_objects=args.dense)
    print("wrote {} train and {} val images ({}) in {:.1f} s:\n  {}\n  {}".format(
        args.train, args.val, ", ".join(CLASSES), time.time() - start, train_json, val_json))


if __name__ == "__main__":
    main()
