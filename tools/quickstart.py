#!/usr/bin/env python
"""The quickstart (`make demo`): data -> train ATSS on the CPU -> COCO evaluation -> annotated
images, training curves and metrics in one output folder.

    python tools/quickstart.py [--data synthetic|real] [--output DIR] [KEY VALUE ...]

--data synthetic (default): generates the synthetic shapes dataset in datasets/synthetic and
trains configs/quickstart/atss_R_18_synthetic.yaml. --data real: the raccoon photographs shipped
in data/raccoon with configs/quickstart/atss_R_18_raccoon.yaml (`make demo DATA=real`).
"""
import argparse
import json
import os
import time

import cv2
import torch

from atss_core.config import load_config
from atss_core.data.build import make_data_loader
from atss_core.data.synthetic import make_synthetic_dataset
from atss_core.engine.defaults import train
from atss_core.engine.inference import inference
from atss_core.engine.predictor import ATSSDemo
from atss_core.engine.tensorboard import make_tracker
from atss_core.utils.cli import add_debug_flag, parse_with_overrides, run_cli
from atss_core.utils.logger import setup_logger
from atss_core.utils.metrics_plot import plot_metrics

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SYNTHETIC_DIR = os.path.join(ROOT, "datasets", "synthetic")
SUMMARY_FILE = "quickstart_summary.json"  # the final report, training time and iterations
# --data: (config, default output folder, what the validation split is called, drawing scale)
RUNS = {
    "synthetic": ("atss_R_18_synthetic.yaml", "quickstart", "the synthetic validation split", 3),
    "real": ("atss_R_18_raccoon.yaml", "quickstart_real", "the raccoon validation photographs", 1),
}


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", choices=sorted(RUNS), default="synthetic",
                        help="synthetic shapes (generated) or the shipped real photographs")
    parser.add_argument("--output", default=None, help="output folder (default: output/quickstart[_real])")
    parser.add_argument("--num-images", type=int, default=12, help="validation images to draw")
    add_debug_flag(parser)
    parser.add_argument("opts", nargs=argparse.REMAINDER, help="config overrides as KEY VALUE pairs")
    args = parse_with_overrides(parser)

    config_name, output_name, split_name, draw_scale = RUNS[args.data]
    os.chdir(ROOT)  # the configs name their data relative to the repository
    output = args.output or os.path.join(ROOT, "output", output_name)
    cfg = load_config(os.path.join(ROOT, "configs", "quickstart", config_name), ["OUTPUT_DIR", output] + (args.opts or []),
                      freeze=True)
    logger = setup_logger("atss_core", cfg.OUTPUT_DIR, 0)

    if args.data == "synthetic" and not os.path.isfile(os.path.join(SYNTHETIC_DIR, "annotations",
                                                                      "instances_val.json")):
        logger.info("generating the synthetic dataset in %s ...", SYNTHETIC_DIR)
        make_synthetic_dataset(SYNTHETIC_DIR)

    start = time.time()
    history_path = os.path.join(cfg.OUTPUT_DIR, "training_history.json")
    history = []
    if os.path.isfile(os.path.join(cfg.OUTPUT_DIR, "last_checkpoint")) and os.path.isfile(history_path):
        with open(history_path) as f:
            history = json.load(f)  # a resumed run continues its curves
    tracker = make_tracker(cfg)
    model = train(cfg, local_rank=0, distributed=False, logger=logger, log_period=100, progress=True,
                  history=history, tracker=tracker)
    with open(history_path, "w") as f:
        json.dump(history, f)
    train_time = time.time() - start

    (loader,) = make_data_loader(cfg, is_train=False)
    report = inference(model, loader, cfg.DATASETS.TEST[0], device=torch.device(cfg.MODEL.DEVICE),
                       output_folder=os.path.join(cfg.OUTPUT_DIR, "inference"), logger=logger, tracker=tracker,
                       iteration=cfg.SOLVER.MAX_ITER)
    tracker.close()
    metrics = dict(report, train_seconds=round(train_time, 1), iterations=cfg.SOLVER.MAX_ITER)
    # metrics.json is the training run's JSON-lines record (engine/defaults.py); this is the summary
    with open(os.path.join(cfg.OUTPUT_DIR, SUMMARY_FILE), "w") as f:
        json.dump(metrics, f, indent=2)
    if history:
        plot_metrics({"quickstart": history}, os.path.join(cfg.OUTPUT_DIR, "training_curves.png"))

    dataset = loader.dataset
    # the class names come from the checkpoint, which records the training data's
    demo = ATSSDemo(cfg, weights=os.path.join(cfg.OUTPUT_DIR, "model_final.pth"), confidence_threshold=0.4)
    drawn = os.path.join(cfg.OUTPUT_DIR, "detections")
    os.makedirs(drawn, exist_ok=True)
    for index in range(min(args.num_images, len(dataset))):
        info = dataset.get_img_info(index)
        image = cv2.imread(os.path.join(dataset.root, info["file_name"]))
        annotated, _ = demo.run_on_opencv_image(image)
        cv2.imwrite(os.path.join(drawn, os.path.splitext(info["file_name"])[0] + ".jpg"),
                    cv2.resize(annotated, None, fx=draw_scale, fy=draw_scale, interpolation=cv2.INTER_NEAREST))

    bbox = report["bbox"]
    print("\nquickstart finished in {:.0f} s (training {:.0f} s)".format(time.time() - start, train_time))
    print("COCO AP on {}:".format(split_name))
    print("  " + "  ".join("{} {:.3f}".format(k, v) for k, v in bbox.items()))
    print("outputs in {}:".format(cfg.OUTPUT_DIR))
    for name in ("model_final.pth", SUMMARY_FILE, "metrics.json", "training_curves.png", "detections/",
                 "inference/bbox.json", "log.txt"):
        print("  " + name)


if __name__ == "__main__":
    run_cli(main)
