"""The COCO evaluators (TEST.COCO_EVAL_BACKEND) on a generated detection set: seconds of
each and a check that both give the same 12 COCO numbers (used by tools/benchmark.py
--coco-eval and by the tests)."""
import contextlib
import copy
import io
import time

import numpy as np


def generate_detection_set(num_images, detections_per_image, num_categories=80, seed=0):
    """COCO ground truth (a dict) and detections (result records): per image a few objects of
    every size (some crowd), detections near them with noise, duplicates and false positives."""
    rng = np.random.RandomState(seed)
    images, annotations, results = [], [], []
    for image_id in range(1, num_images + 1):
        width, height = int(rng.randint(400, 1333)), int(rng.randint(400, 800))
        images.append({"id": image_id, "file_name": "{}.jpg".format(image_id), "width": width, "height": height})
        objects = []
        for _ in range(int(rng.randint(1, 12))):
            w = float(rng.choice([16, 48, 160])) * rng.uniform(0.5, 2.0)
            h = w * rng.uniform(0.5, 2.0)
            x, y = rng.uniform(0, max(width - w, 1)), rng.uniform(0, max(height - h, 1))
            category = int(rng.randint(1, num_categories + 1))
            crowd = int(rng.rand() < 0.05)
            annotations.append({"id": len(annotations) + 1, "image_id": image_id, "category_id": category,
                                "bbox": [x, y, w, h], "area": w * h, "iscrowd": crowd})
            objects.append((x, y, w, h, category))
        for k in range(detections_per_image):
            if objects and k < 3 * len(objects):
                x, y, w, h, category = objects[k % len(objects)]
                jitter = rng.normal(0, 0.15, 4) * [w, h, w, h]
                box = [x + jitter[0], y + jitter[1], max(w + jitter[2], 1.0), max(h + jitter[3], 1.0)]
                if rng.rand() < 0.1:
                    category = int(rng.randint(1, num_categories + 1))
            else:
                w, h = rng.uniform(8, 300, 2)
                box = [rng.uniform(0, width - w / 2), rng.uniform(0, height - h / 2), w, h]
                category = int(rng.randint(1, num_categories + 1))
            results.append({"image_id": image_id, "category_id": category, "bbox": [float(v) for v in box],
                            "score": float(rng.rand())})
    categories = [{"id": c, "name": "class{}".format(c)} for c in range(1, num_categories + 1)]
    return {"images": images, "annotations": annotations, "categories": categories}, results


def evaluate_with(backend, gt, results):
    """(the 12 COCO stats, seconds) of one backend, its printing silenced."""
    from pycocotools.coco import COCO

    from atss_core.data.datasets.evaluation.coco.coco_eval import coco_evaluator

    with contextlib.redirect_stdout(io.StringIO()):
        coco_gt = COCO()
        coco_gt.dataset = copy.deepcopy(gt)  # the evaluators add fields to what they are given
        coco_gt.createIndex()
        start = time.perf_counter()
        evaluator = coco_evaluator(backend, coco_gt, copy.deepcopy(results))
        evaluator.evaluate()
        evaluator.accumulate()
        evaluator.summarize()
        seconds = time.perf_counter() - start
    return [float(v) for v in evaluator.stats[:12]], seconds


def coco_eval_case(num_images=5000, detections_per_image=100):
    gt, results = generate_detection_set(num_images, detections_per_image)
    stats, seconds = {}, {}
    for backend in ("pycocotools", "faster-coco-eval"):
        stats[backend], seconds[backend] = evaluate_with(backend, gt, results)
    if not np.allclose(stats["pycocotools"], stats["faster-coco-eval"], rtol=0, atol=1e-9):
        raise AssertionError("the COCO evaluators disagree: {}".format(stats))
    return {"case": "COCO evaluation, {} images x {} detections".format(num_images, detections_per_image),
            "seconds": seconds, "stats": stats["pycocotools"],
            "speedup": seconds["pycocotools"] / seconds["faster-coco-eval"]}
