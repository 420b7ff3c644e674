#!/usr/bin/env python
"""Records the public Python API of the official atss_core (module, name, leading parameters)
that atss_core keeps, into tests/data/official/python_api.json (tests/repo/test_official_api.py
checks it). Reads the official sources with ast, without importing them.

    python tools/dev/record_official_api.py --official-repo PATH_TO_sfzhang15_ATSS

Out of scope, and not recorded: the R-CNN heads, FBNet, MobileNet, masks, keypoints and the
RetinaNet/FCOS/RPN modules that an ATSS model does not use (OUT_OF_SCOPE_PATHS and
OUT_OF_SCOPE_NAMES)."""
import argparse
import ast
import json
import os

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
OUTPUT = os.path.join(ROOT, "tests", "data", "official", "python_api.json")
OUT_OF_SCOPE_PATHS = ("roi_heads", "fbnet", "keypoint", "mask", "retinanet", "fcos", "mobilenet", "poolers",
                      "balanced_positive_negative_sampler", "rpn/loss.py", "rpn/inference.py", "deform_pool",
                      "smooth_l1_loss", "iou_loss", "list_dataset", "model_zoo", "cv2_util", "utils/imports.py",
                      "miscellaneous", "utils/timer.py", "utils/registry.py", "layers/_utils.py")
OUT_OF_SCOPE_NAMES = {"prepare_for_coco_keypoint", "prepare_for_coco_segmentation", "build_mnv2_fpn_backbone",
                      "ResNetHead", "RPNHeadConvRegressor", "RPNHeadFeatureSingleConv", "RPNModule"}


def leading_parameters(node):
    """Positional parameter names of a function, or of a class's __init__ (None: no __init__)."""
    if isinstance(node, ast.ClassDef):
        inits = [b for b in node.body if isinstance(b, ast.FunctionDef) and b.name == "__init__"]
        if not inits:
            return None
        node = inits[0]
    names = [a.arg for a in node.args.posonlyargs + node.args.args]
    return names[1:] if names and names[0] in ("self", "cls") else names


def public_api(package_dir):
    rows = []
    for folder, _, files in os.walk(package_dir):
        for file_name in sorted(files):
            path = os.path.join(folder, file_name)
            relative = os.path.relpath(path, os.path.dirname(package_dir)).replace(os.sep, "/")
            if not file_name.endswith(".py") or any(part in relative for part in OUT_OF_SCOPE_PATHS):
                continue
            module = relative[:-3].replace("/", ".").replace(".__init__", "")
            with open(path) as f:
                tree = ast.parse(f.read())
            for node in tree.body:
                if (isinstance(node, (ast.FunctionDef, ast.ClassDef)) and not node.name.startswith("_")
                        and node.name not in OUT_OF_SCOPE_NAMES):
                    rows.append({"module": module, "name": node.name, "leading_parameters": leading_parameters(node)})
    return sorted(rows, key=lambda r: (r["module"], r["name"]))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-repo", required=True, help="a checkout of github.com/sfzhang15/ATSS")
    args = parser.parse_args()
    rows = public_api(os.path.join(args.official_repo, "atss_core"))
    with open(OUTPUT, "w") as f:
        json.dump(rows, f, indent=1)
    print("{} names written to {}".format(len(rows), OUTPUT))


if __name__ == "__main__":
    main()
