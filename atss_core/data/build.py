"""make_data_loader: datasets from the catalog, transforms, samplers and the collator."""
import bisect
import logging

import torch.utils.data

from atss_core.config.paths_catalog import DatasetCatalog
from atss_core.utils.comm import get_rank, get_world_size
from atss_core.utils.seed import SeededBatches, SeededDataset, worker_seeder

from . import datasets as D
from .collate_batch import BatchCollator, BBoxAugCollator
from .datasets.concat_dataset import ConcatDataset
from .samplers import (DistributedSampler, GroupedBatchSampler, IterationBasedBatchSampler,
                       RepeatFactorTrainingSampler, repeat_factors)
from .transforms import build_transforms


def build_dataset(dataset_list, transforms, dataset_catalog=DatasetCatalog, is_train=True, exif_orientation=False,
                  plus_one=1, filter_empty=True, ignore_regions=False):
    """One dataset per name of ``dataset_list`` (test) or their concatenation (train), the
    names looked up in ``dataset_catalog`` (paths_catalog.DatasetCatalog); ``exif_orientation``:
    INPUT.EXIF_ORIENTATION; ``plus_one``: 1 or 0 as MODEL.LEGACY_PLUS_ONE. Training only:
    ``filter_empty`` (DATALOADER.FILTER_EMPTY_ANNOTATIONS) leaves out COCO images without a
    usable box, ``ignore_regions`` (MODEL.ATSS.IGNORE_CROWD) keeps crowds as ignore regions."""
    if not isinstance(dataset_list, (list, tuple)) or not dataset_list:
        raise ValueError("DATASETS.{} must be a non-empty list of dataset names, got {!r}".format(
            "TRAIN" if is_train else "TEST", dataset_list))
    datasets = []
    for name in dataset_list:
        entry = dataset_catalog.get(name)
        factory = getattr(D, entry["factory"], None)
        if factory is None:
            raise NotImplementedError("dataset {!r} needs {}, which atss_core does not have yet".format(
                name, entry["factory"]))
        args = dict(entry["args"], transforms=transforms, skip_unreadable=is_train,
                    exif_orientation=exif_orientation, plus_one=plus_one)
        if entry["factory"] == "COCODataset":
            args["remove_images_without_annotations"] = is_train and filter_empty
        if is_train and ignore_regions:
            args["ignore_regions"] = True
        datasets.append(factory(**args))
        if is_train and not filter_empty:
            log_background_images(datasets[-1], name)
    if not is_train:
        return datasets
    return [datasets[0] if len(datasets) == 1 else ConcatDataset(datasets)]


def log_background_images(dataset, name):
    """Logs how many images of a training set have no object: they train as background."""
    empty = sum(len(dataset.get_groundtruth(i)) == 0 for i in range(len(dataset)))
    logging.getLogger(__name__).info("%s: %d of %d training images have no object and train as background images "
                                     "(DATALOADER.FILTER_EMPTY_ANNOTATIONS False)", name, empty, len(dataset))
    return empty


def _aspect_ratio_groups(dataset):
    """Group 0: landscape (height / width < 1); group 1: portrait or square."""
    groups = []
    for i in range(len(dataset)):
        info = dataset.get_img_info(i)
        groups.append(bisect.bisect_right([1], float(info["height"]) / float(info["width"])))
    return groups


def make_data_sampler(dataset, shuffle, distributed, seed=0):
    """Indices for this process: a shard of the dataset per process when ``distributed``, else
    all of it; shuffled from ``seed`` (and the epoch) when ``shuffle``."""
    if distributed:
        return DistributedSampler(dataset, num_replicas=get_world_size(), rank=get_rank(), shuffle=shuffle, seed=seed)
    return DistributedSampler(dataset, num_replicas=1, rank=0, shuffle=shuffle, seed=seed)


TRAINING_SAMPLERS = ("TrainingSampler", "RepeatFactorTrainingSampler")


def make_training_sampler(cfg, dataset, distributed, seed=0):
    """DATALOADER.SAMPLER_TRAIN: the official shuffle, or repeat-factor sampling with
    DATALOADER.REPEAT_THRESHOLD; each process gets its share of the same epoch."""
    name = cfg.DATALOADER.SAMPLER_TRAIN
    if name not in TRAINING_SAMPLERS:
        raise ValueError("DATALOADER.SAMPLER_TRAIN must be one of {}, got {!r}".format(", ".join(TRAINING_SAMPLERS),
                                                                                      name))
    if name == "TrainingSampler":
        return make_data_sampler(dataset, True, distributed, seed)
    threshold = float(cfg.DATALOADER.REPEAT_THRESHOLD)
    if threshold <= 0:
        raise ValueError("DATALOADER.SAMPLER_TRAIN RepeatFactorTrainingSampler needs DATALOADER.REPEAT_THRESHOLD > 0 "
                         "(LVIS uses 0.001), got {}".format(threshold))
    factors = repeat_factors([dataset.get_groundtruth(i).get_field("labels") for i in range(len(dataset))],
                             threshold)
    logging.getLogger(__name__).info(
        "repeat-factor sampling (threshold %g): %d of %d images repeat, by up to %.2f; an epoch holds about %.0f "
        "images", threshold, int((factors > 1).sum()), len(factors), float(factors.max()), float(factors.sum()))
    world, rank = (get_world_size(), get_rank()) if distributed else (1, 0)
    return RepeatFactorTrainingSampler(factors, num_replicas=world, rank=rank, seed=seed)


def make_batch_data_sampler(dataset, sampler, aspect_grouping, images_per_batch, num_iters=None, start_iter=0):
    if aspect_grouping:
        batch_sampler = GroupedBatchSampler(sampler, _aspect_ratio_groups(dataset), images_per_batch,
                                            drop_uneven=False,
                                            keep_repeats=isinstance(sampler, RepeatFactorTrainingSampler))
    else:
        batch_sampler = torch.utils.data.sampler.BatchSampler(sampler, images_per_batch, drop_last=False)
    if num_iters is not None:
        batch_sampler = IterationBasedBatchSampler(batch_sampler, num_iters, start_iter)
    return batch_sampler


def images_per_process(total, what, world=None):
    """The share of a global batch size ``total`` (config key ``what``) for each of ``world``
    processes (default: the current process group's size)."""
    world = get_world_size() if world is None else world
    if total <= 0 or total % world:
        raise ValueError("{} ({}) must be a positive multiple of the number of processes ({})".format(
            what, total, world))
    return total // world


def check_num_classes(dataset, name, num_classes):
    """A dataset with more categories than the classifier has outputs would train labels the
    head cannot represent (and evaluate nonsense)."""
    count = getattr(dataset, "num_categories", None)
    if count is not None and count > num_classes - 1:
        raise ValueError("dataset {} has {} categories but MODEL.ATSS.NUM_CLASSES is {} (background included): set "
                         "MODEL.ATSS.NUM_CLASSES {}".format(name, count, num_classes, count + 1))


def make_data_loader(cfg, is_train=True, is_distributed=None, start_iter=0, seed=0, dataset_names=None):
    """Training: one iteration-based loader over the concatenated DATASETS.TRAIN, resuming at
    ``start_iter``, its order and every sample's random transforms drawn from ``seed``.
    Test: one loader per DATASETS.TEST entry, in dataset order. ``is_distributed``: each process
    reads its shard (True) or all images (False); None follows the process group.
    ``dataset_names``: test loaders for these instead of DATASETS.TEST (e.g. DATASETS.VAL)."""
    logger = logging.getLogger(__name__)
    if is_distributed is None:
        is_distributed = get_world_size() > 1
    if is_train:
        per_process = images_per_process(cfg.SOLVER.IMS_PER_BATCH, "SOLVER.IMS_PER_BATCH")
        num_iters = cfg.SOLVER.MAX_ITER
    else:
        per_process = images_per_process(cfg.TEST.IMS_PER_BATCH, "TEST.IMS_PER_BATCH")
        num_iters, start_iter = None, 0
    names = cfg.DATASETS.TRAIN if is_train else (cfg.DATASETS.TEST if dataset_names is None else dataset_names)
    # the raw images go to engine/bbox_aug.py or engine/tiling.py
    bbox_aug = not is_train and (cfg.TEST.BBOX_AUG.ENABLED or cfg.TEST.TILE.ENABLED)
    datasets = build_dataset(names, None if bbox_aug else build_transforms(cfg, is_train), is_train=is_train,
                             exif_orientation=cfg.INPUT.EXIF_ORIENTATION,
                             plus_one=int(cfg.MODEL.LEGACY_PLUS_ONE),
                             filter_empty=cfg.DATALOADER.FILTER_EMPTY_ANNOTATIONS,
                             ignore_regions=cfg.MODEL.ATSS.IGNORE_CROWD)
    collator = BBoxAugCollator() if bbox_aug else BatchCollator(cfg.DATALOADER.SIZE_DIVISIBILITY)
    loaders = []
    for dataset, name in zip(datasets, [names] if is_train else names):
        if len(dataset) == 0:
            raise ValueError("dataset {} has no usable image".format(name))
        if not bbox_aug:
            check_num_classes(dataset, name, cfg.MODEL.ATSS.NUM_CLASSES)
        if is_train:
            sampler = make_training_sampler(cfg, dataset, is_distributed, seed)
        else:
            sampler = make_data_sampler(dataset, False, is_distributed, seed)
        batch_sampler = make_batch_data_sampler(dataset, sampler, cfg.DATALOADER.ASPECT_RATIO_GROUPING,
                                                per_process, num_iters, start_iter)
        worker_init = None
        if is_train:
            batch_sampler = SeededBatches(batch_sampler, seed, get_rank())
            dataset = SeededDataset(dataset)
            worker_init = worker_seeder(seed, get_rank())
        loaders.append(torch.utils.data.DataLoader(
            dataset, num_workers=cfg.DATALOADER.NUM_WORKERS, batch_sampler=batch_sampler,
            collate_fn=collator, worker_init_fn=worker_init))
        shown = " + ".join(name) if is_train else name  # training concatenates every DATASETS.TRAIN entry
        logger.info("%s: %d images, %d per process and batch", shown, len(dataset), per_process)
    if is_train:
        return loaders[0]
    return loaders
