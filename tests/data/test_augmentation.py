"""The torchvision.transforms.v2 augmentation switches (INPUT.*): boxes stay on their objects,
the default pipeline is the official one, and every draw follows SEED, also with workers and
on resume."""
import numpy as np
import pytest
import torch

from atss_core.config import cfg as default_cfg
from atss_core.data.build import make_data_loader
from atss_core.data.transforms import build_transforms
from atss_core.data.transforms import transforms as T
from atss_core.structures.bounding_box import BoxList
from atss_core.utils.seed import seed_everything

from .test_build import loader_cfg

# BGR colours of the objects (label = position + 1) on a grey picture
COLOURS = [(0, 0, 255), (0, 255, 0), (255, 0, 0), (0, 255, 255)]
BOXES = [(20, 30, 89, 99), (150, 20, 229, 69), (40, 140, 119, 219), (200, 120, 289, 219)]  # inclusive pixels

GEOMETRIC = {
    "zoom out": ["INPUT.ZOOM_OUT_PROB", 1.0, "INPUT.ZOOM_OUT_MAX_RATIO", 2.0],
    "IoU crop": ["INPUT.IOU_CROP_PROB", 1.0],
    "scale jitter": ["INPUT.SCALE_JITTER_RANGE", (0.5, 1.5)],
    "vertical flip": ["INPUT.VERTICAL_FLIP_PROB_TRAIN", 1.0],
    "horizontal flip": ["INPUT.HORIZONTAL_FLIP_PROB_TRAIN", 1.0],
}
GEOMETRIC["all together"] = [v for opts in GEOMETRIC.values() for v in opts]


def scene():
    image = np.full((240, 320, 3), 128, dtype=np.uint8)
    for (x1, y1, x2, y2), colour in zip(BOXES, COLOURS):
        image[y1:y2 + 1, x1:x2 + 1] = colour
    target = BoxList(torch.tensor(BOXES, dtype=torch.float32), (320, 240), mode="xyxy")
    target.add_field("labels", torch.arange(1, len(BOXES) + 1))
    return image, target


def augment_cfg(options):
    cfg = default_cfg.clone()
    cfg.merge_from_list(["INPUT.MIN_SIZE_TRAIN", (300,), "INPUT.MAX_SIZE_TRAIN", 400,
                         "INPUT.HORIZONTAL_FLIP_PROB_TRAIN", 0.0] + options)
    return cfg


def to_bgr_pixels(cfg, tensor):
    """Back from the normalised tensor (TO_BGR255, std 1) to BGR 0..255 pixels [H, W, 3]."""
    mean = torch.tensor(cfg.INPUT.PIXEL_MEAN).view(3, 1, 1)
    return (tensor + mean).permute(1, 2, 0).numpy()


def is_colour(pixels, colour):
    return np.abs(pixels - np.asarray(colour, dtype=np.float32)).max(axis=-1) < 40


def check_boxes_on_their_objects(pixels, target):
    height, width = pixels.shape[:2]
    checked = 0
    for (x1, y1, x2, y2), label in zip(target.bbox.tolist(), target.get_field("labels").tolist()):
        colour = COLOURS[label - 1]
        left, top, right, bottom = int(np.ceil(x1)) + 2, int(np.ceil(y1)) + 2, int(x2) - 2, int(y2) - 2
        if right - left < 3 or bottom - top < 3:
            continue  # too small a remnant to look inside
        inside = is_colour(pixels[top:bottom + 1, left:right + 1], colour)
        assert inside.mean() > 0.97, "box {} of label {} is not on its object".format((x1, y1, x2, y2), label)
        # a line of pixels 3 px outside each side (where that is still in the picture) is not its colour
        rows, cols = slice(top, bottom + 1), slice(left, right + 1)
        for outside in ([rows, int(np.floor(x1)) - 3], [rows, int(np.ceil(x2)) + 3],
                        [int(np.floor(y1)) - 3, cols], [int(np.ceil(y2)) + 3, cols]):
            index = outside[0] if isinstance(outside[1], slice) else outside[1]
            if 0 <= index < (height if isinstance(outside[1], slice) else width):
                assert not is_colour(pixels[tuple(outside)], colour).any(), \
                    "box {} of label {} is larger than its object".format((x1, y1, x2, y2), label)
        checked += 1
    return checked


@pytest.mark.parametrize("name", sorted(GEOMETRIC))
def test_each_geometric_augmentation_keeps_every_box_on_its_object(name):
    cfg = augment_cfg(GEOMETRIC[name])
    transform = build_transforms(cfg, is_train=True)
    image, target = scene()
    checked, sizes = 0, set()
    for seed in range(8):
        seed_everything(seed)
        out, out_target = transform(image, target)
        pixels = to_bgr_pixels(cfg, out)
        assert out_target.size == (pixels.shape[1], pixels.shape[0])
        checked += check_boxes_on_their_objects(pixels, out_target)
        sizes.add(tuple(pixels.shape[:2]))
    assert checked >= 8  # most boxes survive and were looked at
    if name in ("zoom out", "IoU crop", "scale jitter"):
        assert len(sizes) > 1  # the augmentation really changed the picture
    if name == "scale jitter":  # cropped back where it grew: never larger than the resize's 300 x 400
        assert all(h <= 300 and w <= 400 for h, w in sizes)


def colour_extent(image, colour):
    """The inclusive pixel box (x1, y1, x2, y2) of the pixels of exactly ``colour``."""
    ys, xs = np.nonzero((image == np.asarray(colour, dtype=image.dtype)).all(axis=-1))
    return [float(xs.min()), float(ys.min()), float(xs.max()), float(ys.max())]


@pytest.mark.parametrize("plus_one", [1, 0])
def test_torchvision_steps_move_boxes_to_the_exact_pixels(plus_one):
    """Zoom out and the vertical flip move pixels by whole numbers: each object's coloured
    pixels end up exactly where its box says, in either box convention."""
    from torchvision.transforms import v2

    image, target = scene()
    if not plus_one:  # the same pixels, described with x2, y2 one past the last pixel
        target = BoxList(target.bbox + torch.tensor([0.0, 0, 1, 1]), target.size, plus_one=0)
        target.add_field("labels", torch.arange(1, len(BOXES) + 1))
    step = T.TorchvisionV2([v2.RandomZoomOut(fill=[128, 128, 128], side_range=(1.5, 2.5), p=1.0),
                            v2.RandomVerticalFlip(p=1.0)])
    for seed in range(3):
        seed_everything(seed)
        out, out_target = step(image, target)
        assert out.shape[0] > image.shape[0] and out_target.size == (out.shape[1], out.shape[0])
        for box, label in zip(out_target.bbox.tolist(), out_target.get_field("labels").tolist()):
            expected = colour_extent(out, COLOURS[label - 1])
            if not plus_one:
                expected[2] += 1
                expected[3] += 1
            assert box == expected


def test_photometric_distortion_changes_colours_not_boxes():
    cfg = augment_cfg(["INPUT.PHOTOMETRIC_DISTORT_PROB", 1.0])
    transform = build_transforms(cfg, is_train=True)
    plain = build_transforms(augment_cfg([]), is_train=True)
    image, target = scene()
    seed_everything(3)
    out, out_target = transform(image, target)
    reference, reference_target = plain(image, target)
    assert torch.equal(out_target.bbox, reference_target.bbox)
    assert not torch.equal(out, reference)


def test_defaults_are_the_official_pipeline():
    transform = build_transforms(default_cfg, is_train=True)
    kinds = [type(t) for t in transform.transforms]
    assert kinds == [T.Resize, T.RandomHorizontalFlip, T.ToTensor, T.Normalize]
    assert transform.transforms[1].prob == 0.5


def test_zoom_out_fills_with_the_mean_colour():
    cfg = augment_cfg(["INPUT.ZOOM_OUT_PROB", 1.0, "INPUT.ZOOM_OUT_MAX_RATIO", 3.0])
    transform = build_transforms(cfg, is_train=True)
    image, target = scene()
    seed_everything(0)
    out, _ = transform(image, target)
    # the corner is the new border in every zoom-out larger than 1: normalised to about 0
    assert out.shape[-1] > 0 and float(out[:, :2, :2].abs().max()) < 1.0


@pytest.mark.parametrize("key,value,match", [
    ("INPUT.ZOOM_OUT_PROB", 1.5, "probability"),
    ("INPUT.SCALE_JITTER_RANGE", (1.5, 0.5), "SCALE_JITTER_RANGE"),
    ("INPUT.ZOOM_OUT_MAX_RATIO", 0.5, "ZOOM_OUT_MAX_RATIO"),
])
def test_bad_augmentation_settings_are_named(key, value, match):
    cfg = augment_cfg(["INPUT.ZOOM_OUT_PROB", 0.5, key, value])
    with pytest.raises(ValueError, match=match):
        build_transforms(cfg, is_train=True)


def test_images_without_boxes_pass_through_every_augmentation():
    cfg = augment_cfg(GEOMETRIC["all together"] + ["INPUT.PHOTOMETRIC_DISTORT_PROB", 1.0])
    transform = build_transforms(cfg, is_train=True)
    image, _ = scene()
    empty = BoxList(torch.zeros(0, 4), (320, 240))
    empty.add_field("labels", torch.zeros(0, dtype=torch.int64))
    seed_everything(1)
    out, out_target = transform(image, empty)
    assert len(out_target) == 0 and out_target.size == (out.shape[-1], out.shape[-2])


AUGMENTED = ["INPUT.PHOTOMETRIC_DISTORT_PROB", 0.5, "INPUT.ZOOM_OUT_PROB", 0.5, "INPUT.IOU_CROP_PROB", 0.5,
             "INPUT.SCALE_JITTER_RANGE", (0.6, 1.4), "INPUT.VERTICAL_FLIP_PROB_TRAIN", 0.5]


def batches_of(cfg, start_iter=0):
    return [(images.tensors.clone(), [t.bbox.clone() for t in targets], indices)
            for images, targets, indices in make_data_loader(cfg, is_train=True, start_iter=start_iter, seed=7)]


def test_augmented_batches_are_bit_identical_under_a_seed_with_workers_and_on_resume(tmp_path):
    overrides = dict(zip(AUGMENTED[::2], AUGMENTED[1::2]))
    overrides.update({"SOLVER.MAX_ITER": 6, "DATALOADER.NUM_WORKERS": 2})
    cfg = loader_cfg(tmp_path, **overrides)
    first = batches_of(cfg)
    cfg_no_workers = cfg.clone()
    cfg_no_workers.merge_from_list(["DATALOADER.NUM_WORKERS", 0])
    again = batches_of(cfg_no_workers)
    resumed = batches_of(cfg, start_iter=3)
    assert len(first) == 6 and len(resumed) == 3

    def same(a, b):
        return (torch.equal(a[0], b[0]) and a[2] == b[2]
                and all(torch.equal(x, y) for x, y in zip(a[1], b[1])))

    assert all(same(a, b) for a, b in zip(first, again))
    assert all(same(a, b) for a, b in zip(first[3:], resumed))
    (tmp_path / "plain").mkdir()
    plain = batches_of(loader_cfg(tmp_path / "plain", **{"SOLVER.MAX_ITER": 6}))
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(first, plain))  # the switches did something


def _two_process_loader(rank, init_file, cfg, result_file):
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2)
    try:
        for start_iter in (0, 3):
            torch.save(batches_of_from(cfg, start_iter), result_file.format(rank, start_iter))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def batches_of_from(cfg, start_iter):
    return [(images.tensors.clone(), indices)
            for images, _, indices in make_data_loader(cfg, is_train=True, start_iter=start_iter, seed=11)]


def test_two_processes_split_the_repeat_factor_epoch_and_augment_each_share_exactly_on_resume(tmp_path):
    """Two gloo processes (SOLVER.IMS_PER_BATCH 2: one image each) with the augmentation and the
    repeat-factor sampler: each rank's share is its slice of one epoch order, and a run resumed
    at iteration 3 gives each rank the batches the whole run gave it."""
    import torch.multiprocessing as mp

    overrides = dict(zip(AUGMENTED[::2], AUGMENTED[1::2]))
    overrides.update({"SOLVER.MAX_ITER": 5, "DATALOADER.NUM_WORKERS": 0, "DATALOADER.ASPECT_RATIO_GROUPING": False,
                      "DATALOADER.SAMPLER_TRAIN": "RepeatFactorTrainingSampler", "DATALOADER.REPEAT_THRESHOLD": 0.9,
                      "DATALOADER.FILTER_EMPTY_ANNOTATIONS": False})
    cfg = loader_cfg(tmp_path, **overrides)
    result_file = str(tmp_path / "rank{}_from{}.pth")
    mp.spawn(_two_process_loader, args=(str(tmp_path / "init"), cfg, result_file), nprocs=2, join=True)
    runs = {(rank, s): torch.load(result_file.format(rank, s)) for rank in (0, 1) for s in (0, 3)}
    for rank in (0, 1):
        whole, resumed = runs[(rank, 0)], runs[(rank, 3)]
        assert len(whole) == 5 and len(resumed) == 2
        assert all(torch.equal(a[0], b[0]) and a[1] == b[1] for a, b in zip(whole[3:], resumed))
    # the two shares interleave into one epoch order that holds every image at least once
    dealt = [i for a, b in zip(runs[(0, 0)], runs[(1, 0)]) for i in a[1] + b[1]]
    assert set(dealt[:6]) <= set(range(6)) and len(set(dealt)) >= 3
    assert not all(torch.equal(a[0], b[0]) for a, b in zip(runs[(0, 0)], runs[(1, 0)]))  # own seeds per rank


def test_boxes_on_the_right_and_bottom_edges_survive_a_downscaled_scale_jitter():
    cfg = augment_cfg(["INPUT.SCALE_JITTER_RANGE", (1.0, 1.0)])
    cfg.merge_from_list(["INPUT.MIN_SIZE_TRAIN", (180,), "INPUT.MAX_SIZE_TRAIN", 240])  # 240x320 -> 180x240
    image, _ = scene()
    edges = BoxList(torch.tensor([[0.0, 0, 319, 239], [200, 10, 319, 100], [10, 150, 100, 239], [50, 50, 90, 90]]),
                    (320, 240))
    edges.add_field("labels", torch.tensor([1, 2, 3, 4]))
    seed_everything(0)
    out, target = build_transforms(cfg, is_train=True)(image, edges)
    assert target.get_field("labels").tolist() == [1, 2, 3, 4]
    assert target.bbox[:, 2].max() <= out.shape[-1] - 1 and target.bbox[:, 3].max() <= out.shape[-2] - 1


def test_the_iou_crop_is_chosen_around_objects_not_ignore_regions():
    from atss_core.data.datasets.ignore_regions import with_ignore_regions

    cfg = augment_cfg(["INPUT.IOU_CROP_PROB", 1.0])
    transform = build_transforms(cfg, is_train=True)
    image, objects = scene()
    objects = objects[torch.tensor([0])]  # one small object
    crowd = BoxList(torch.tensor([[150.0, 20, 310, 230]]), (320, 240))
    crowd.add_field("labels", torch.tensor([2]))
    target = with_ignore_regions(objects, crowd)
    cropped = 0
    for seed in range(30):
        seed_everything(seed)
        out, out_target = transform(image, target)
        assert (~out_target.get_field("ignore")).sum() == 1  # the object is always kept
        cropped += out.shape[-2:] != (300, 400)
    assert cropped > 5
    thin = np.full((2, 300, 3), 128, dtype=np.uint8)
    line = BoxList(torch.tensor([[10.0, 0, 100, 1]]), (300, 2))
    line.add_field("labels", torch.tensor([1]))
    seed_everything(0)
    _, out_target = T.TorchvisionV2([T.IoUCropAroundObjects(1.0)])(thin, line)  # too thin to crop: passes
    assert len(out_target) == 1
