"""TEST.TILE (engine/tiling.py): the tiles cover the image with the asked overlap, boxes come
back to image coordinates exactly, boxes cut by a tile edge give way to the neighbour that holds
the object whole, and the merge is the post-processing's NMS and cap."""
import cv2
import numpy as np
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.engine.tiling import check_tile_settings, im_detect_tiled, keep_whole_boxes, tile_layout, tile_starts
from atss_core.modeling.rpn.atss.atss import BoxCoder
from atss_core.modeling.rpn.atss.inference import make_atss_postprocessor
from atss_core.structures import BoxList

SQUARE = 12


class BlobDetector(torch.nn.Module):
    """A stand-in detector with the model's interface: every bright square of at least
    ``min_side`` pixels in its input is a detection (label 1, score from its size), so it misses
    small objects the way a real one does when they are shrunk."""

    def __init__(self, cfg, min_side=8):
        super().__init__()
        self.min_side = min_side
        self.rpn = torch.nn.Module()
        self.rpn.box_selector_test = make_atss_postprocessor(cfg, BoxCoder(cfg))
        self.calls = []

    def forward(self, images):
        outputs = []
        for tensor, (height, width) in zip(images.tensors, images.image_sizes):
            bright = (tensor[:, :height, :width].mean(0) > 50).numpy().astype(np.uint8)
            count, _, stats, _ = cv2.connectedComponentsWithStats(bright)
            boxes, scores = [], []
            for left, top, w, h, _ in stats[1:count]:
                if min(w, h) >= self.min_side:
                    boxes.append([left, top, left + w - 1, top + h - 1])
                    scores.append(float(w * h) / (w * h + 1000.0))  # larger when seen larger
            result = BoxList(torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4), (width, height))
            result.add_field("scores", torch.tensor(scores, dtype=torch.float32))
            result.add_field("labels", torch.ones(len(boxes), dtype=torch.int64))
            outputs.append(result)
            self.calls.append((width, height))
        return outputs


def tile_cfg(size=256, overlap=0.25, enabled=True):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["TEST.TILE.ENABLED", enabled, "TEST.TILE.SIZE", size, "TEST.TILE.OVERLAP", overlap,
                         "INPUT.MIN_SIZE_TEST", size, "INPUT.MAX_SIZE_TEST", size, "MODEL.DEVICE", "cpu",
                         "TEST.DETECTIONS_PER_IMG", 1000])
    return cfg


def scene(height=600, width=900):
    """Small squares, some straddling the tile edges of 256-pixel tiles with 0.25 overlap, and a large one."""
    image = np.zeros((height, width, 3), dtype=np.uint8)
    corners = [(20, 30), (186, 40), (250, 100), (380, 185), (575, 300), (700, 480), (880, 580), (440, 440),
               (186, 186), (0, 0)]
    for x, y in corners:
        image[y:y + SQUARE, x:x + SQUARE] = 255
    image[300:420, 60:200] = 255  # a large object the whole-image pass finds too
    boxes = [[x, y, min(x + SQUARE, width) - 1, min(y + SQUARE, height) - 1] for x, y in corners]
    return image, sorted(boxes + [[60, 300, 199, 419]])


def test_tiles_cover_the_image_with_the_overlap():
    assert tile_starts(900, 256, 0.25) == [0, 192, 384, 576, 644]
    assert tile_starts(200, 256, 0.25) == [0]
    layout = tile_layout(900, 600, 256, 0.25)
    covered = np.zeros((600, 900), dtype=int)
    for (x0, y0, x1, y1), _ in layout:
        assert x1 - x0 == 256 and y1 - y0 == 256
        covered[y0:y1, x0:x1] += 1
    assert covered.min() >= 1 and len(layout) == 5 * 3
    # what each tile shares with its neighbours: 64 px inside, more next to the flush last column and row, 0 at the edges
    assert layout[0][1] == (0, 0, 64, 64) and layout[4][1] == (188, 0, 0, 64) and layout[14][1] == (188, 104, 0, 0)


def test_cut_boxes_give_way_to_the_neighbour_that_holds_them():
    window = (192, 0, 448, 256)
    shared = (64, 0, 64, 0)  # neighbours left and right, the image's edges above and below
    boxes = torch.tensor([[192.0, 10, 200, 20],    # cut by the left edge, narrow: the left tile holds it
                          [192.0, 30, 300, 60],    # cut by the left edge, wider than the overlap: kept
                          [440.0, 70, 447, 80],    # cut by the right edge, narrow
                          [250.0, 0, 260, 10],     # touches the top, which is the image's edge: kept
                          [250.0, 100, 270, 120]])  # inside
    assert keep_whole_boxes(boxes, window, shared).tolist() == [False, True, False, True, True]


def test_tiled_boxes_come_back_exactly_and_the_untiled_model_misses_them():
    image, expected = scene()
    cfg = tile_cfg()
    model = BlobDetector(cfg)
    tiled = im_detect_tiled(model, [image], torch.device("cpu"), cfg)[0]
    assert tiled.size == (900, 600)
    assert sorted(tiled.bbox.tolist()) == expected  # every square once, at its pixels, none cut in two
    # the whole image at the test size: the small squares shrink under the detector's limit
    one_tile = tile_cfg()
    one_tile.merge_from_list(["TEST.TILE.SIZE", 1024])  # one tile: the whole image only, at 256 px
    whole = im_detect_tiled(model, [image], torch.device("cpu"), one_tile)[0]
    assert whole.bbox.shape[0] == 1 and (900, 600) not in model.calls


def test_the_merge_is_the_post_processing_nms_and_cap():
    image, expected = scene()
    cfg = tile_cfg()
    cfg.merge_from_list(["TEST.DETECTIONS_PER_IMG", 1])
    tiled = im_detect_tiled(BlobDetector(cfg), [image], torch.device("cpu"), cfg)[0]
    # the best score: the large object as its tile saw it (the whole image's smaller copy suppressed)
    assert tiled.bbox.tolist() == [[60.0, 300.0, 199.0, 419.0]]
    cfg.merge_from_list(["TEST.DETECTIONS_PER_IMG", 3])
    capped = im_detect_tiled(BlobDetector(cfg), [image], torch.device("cpu"), cfg)[0]
    assert len(capped) == len(expected)  # the official cap keeps the squares' tied scores at the boundary


@pytest.mark.parametrize("key, value, message", [
    ("TEST.TILE.SIZE", 8, "TEST.TILE.SIZE must be at least 32"),
    ("TEST.TILE.OVERLAP", 1.0, r"TEST.TILE.OVERLAP must be in \[0, 1\)"),
    ("TEST.BBOX_AUG.ENABLED", True, "TEST.TILE and TEST.BBOX_AUG cannot be combined")])
def test_bad_tile_settings_are_named(key, value, message):
    cfg = tile_cfg()
    cfg.merge_from_list([key, value])
    with pytest.raises(ValueError, match=message):
        check_tile_settings(cfg)


def test_the_test_loader_hands_tiling_the_original_images_and_the_ap_is_perfect(tmp_path):
    """test_net.py's path: with TEST.TILE the loader yields the untransformed images, the tiled
    detections are in each image's frame, and COCO scores them 1.0 where the untiled path misses."""
    import json

    from atss_core.data.build import make_data_loader
    from atss_core.data.datasets.evaluation import evaluate
    from atss_core.engine.inference import compute_on_dataset

    image, boxes = scene()
    cv2.imwrite(str(tmp_path / "scene.png"), image)
    annotations = [{"id": i + 1, "image_id": 1, "category_id": 1, "iscrowd": 0,
                    "bbox": [x1, y1, x2 - x1 + 1, y2 - y1 + 1], "area": (x2 - x1 + 1) * (y2 - y1 + 1)}
                   for i, (x1, y1, x2, y2) in enumerate(boxes)]
    (tmp_path / "ann.json").write_text(json.dumps({
        "images": [{"id": 1, "file_name": "scene.png", "width": 900, "height": 600}], "annotations": annotations,
        "categories": [{"id": 1, "name": "square"}]}))
    reports = {}
    for tiled in (True, False):
        cfg = tile_cfg(enabled=tiled)
        cfg.merge_from_list(["DATASETS.TEST", ("coco:{0}:{0}/ann.json".format(tmp_path),), "TEST.IMS_PER_BATCH", 1,
                             "DATALOADER.NUM_WORKERS", 0, "MODEL.ATSS.NUM_CLASSES", 2])
        loader = make_data_loader(cfg, is_train=False)[0]
        model = BlobDetector(cfg)
        predictions = compute_on_dataset(model, loader, torch.device("cpu"), show_progress=False,
                                         tile_cfg=cfg if tiled else None)
        if tiled:
            assert sorted(predictions[0].bbox.tolist()) == boxes
        reports[tiled] = evaluate(loader.dataset, [predictions[0]], None)["bbox"]["AP"]
    assert reports[True] == pytest.approx(1.0) and reports[False] < 0.2
