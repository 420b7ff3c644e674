"""Checkpointer(model, optimizer, scheduler, save_dir, save_to_disk, logger) and
DetectronCheckpointer(cfg, model, ...), as officially: atomic saves, resume from
save_dir/last_checkpoint, and loading of weights by name. Reading a weights file, whatever its
format, is atss_core/weights/reader.py; DetectronCheckpointer hands it the config, so that the
conventions a file implies are checked and Caffe2/torchvision/mmdetection files converted for
the model the config builds."""
import contextlib
import errno
import logging
import os

import torch

from atss_core.weights.class_names import recorded_class_names
from atss_core.weights.mmdet import convention_settings, uses_mmdet_conventions
from atss_core.weights.reader import read_weights
from atss_core.weights.state_dict import load_state_dict


TEMPORARY_SUFFIX = ".tmp"


def _write_atomically(path, write):
    """``write(file)`` fills a temporary file in the same folder, which is flushed to the disk
    and then renamed to ``path`` (the folder synced too): a run killed at any moment, even by a
    power loss, leaves either the old file or the new one, never a truncated one. A failed
    write removes its temporary file."""
    tmp = path + TEMPORARY_SUFFIX
    try:
        with open(tmp, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):  # the original error is the one to report
            os.remove(tmp)
        raise
    _sync_folder_of(path)


# Some filesystems (FUSE mounts, CIFS, some network shares) refuse fsync on a folder: the
# file is already in place then, and the rename is as durable as that filesystem allows.
_FOLDER_SYNC_UNSUPPORTED = {errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EBADF, errno.EACCES}
_folders_without_sync = set()  # warned about once each


def _sync_folder_of(path):
    """Flushes the folder entry of a rename to the disk, where the filesystem supports it."""
    name = os.path.dirname(os.path.abspath(path))
    try:
        folder = os.open(name, os.O_RDONLY)
        try:
            os.fsync(folder)
        finally:
            os.close(folder)
    except OSError as e:
        if e.errno not in _FOLDER_SYNC_UNSUPPORTED:
            raise
        if name not in _folders_without_sync:
            _folders_without_sync.add(name)
            logging.getLogger(__name__).warning(
                "the filesystem of %s does not sync folders (%s): a power loss right after a save may undo its "
                "rename (the previous file is then kept)", name, e.strerror or e)


def ema_weights_of(checkpoint):
    """The averaged weights a checkpoint of a MODEL.EMA run holds under "ema", else None."""
    ema = checkpoint.get("ema") if isinstance(checkpoint, dict) else None
    if isinstance(ema, dict) and isinstance(ema.get("weights"), dict):
        return ema["weights"]
    return None


def atomic_torch_save(obj, path):
    _write_atomically(path, lambda f: torch.save(obj, f))


class Checkpointer:
    """Saves and loads a model with its optimizer and scheduler. ``save_to_disk`` falsy (the
    official default, None; the processes other than rank 0) makes ``save`` do nothing."""

    cfg = None  # DetectronCheckpointer's config; without one, weights are read as they are

    def __init__(self, model, optimizer=None, scheduler=None, save_dir="", save_to_disk=None, logger=None):
        self.model = model
        self.optimizer = optimizer
        self.scheduler = scheduler
        self.save_dir = save_dir
        self.save_to_disk = save_to_disk
        self.logger = logger or logging.getLogger(__name__)
        self.class_names = None  # what the last loaded file records (weights/class_names.py)

    # saving
    def save(self, name, **extra):
        """Saves model (+ optimizer, scheduler and ``extra`` such as iteration) as <save_dir>/<name>.pth."""
        if not self.save_dir or not self.save_to_disk:
            return None
        data = {"model": self.model.state_dict()}
        if self.optimizer is not None:
            data["optimizer"] = self.optimizer.state_dict()
        if self.scheduler is not None:
            data["scheduler"] = self.scheduler.state_dict()
        if self.cfg is not None and uses_mmdet_conventions(self.cfg):
            data["conventions"] = convention_settings(self.cfg)  # checked when loaded (check_saved_conventions)
        data.update(extra)
        path = os.path.join(self.save_dir, "{}.pth".format(name))
        self.logger.info("saving checkpoint to %s", path)
        os.makedirs(self.save_dir, exist_ok=True)
        atomic_torch_save(data, path)
        self.tag_last_checkpoint(path)
        return path

    def save_weights(self, name, state_dict, **extra):
        """Saves {"model": state_dict, **extra} as <save_dir>/<name>.pth, atomically, without an
        optimizer and without moving last_checkpoint (model_best.pth)."""
        if not self.save_dir or not self.save_to_disk:
            return None
        path = os.path.join(self.save_dir, "{}.pth".format(name))
        data = {"model": {key: value.detach().cpu() for key, value in state_dict.items()}}
        if self.cfg is not None and uses_mmdet_conventions(self.cfg):
            data["conventions"] = convention_settings(self.cfg)
        data.update(extra)
        os.makedirs(self.save_dir, exist_ok=True)
        atomic_torch_save(data, path)
        return path

    def _last_checkpoint_file(self):
        return os.path.join(self.save_dir, "last_checkpoint")

    def has_checkpoint(self):
        return bool(self.save_dir) and os.path.exists(self._last_checkpoint_file())

    def get_checkpoint_file(self):
        """The checkpoint save_dir/last_checkpoint names, "" when there is none (as officially)."""
        try:
            with open(self._last_checkpoint_file()) as f:
                name = f.read().strip()
        except OSError:
            return ""
        # stored relative to save_dir so an output folder can be moved
        return name if os.path.isabs(name) else os.path.join(self.save_dir, name)

    def tag_last_checkpoint(self, path):
        _write_atomically(self._last_checkpoint_file(), lambda f: f.write(os.path.basename(path).encode()))

    def remove_stale_temporaries(self):
        """Removes the temporary files of saves that a killed run left half written (a training
        run calls it before it starts; nothing may be saving into save_dir then)."""
        if not (self.save_dir and self.save_to_disk and os.path.isdir(self.save_dir)):
            return
        for name in sorted(os.listdir(self.save_dir)):
            if name.endswith(".pth" + TEMPORARY_SUFFIX) or name == "last_checkpoint" + TEMPORARY_SUFFIX:
                os.remove(os.path.join(self.save_dir, name))
                self.logger.info("removed %s, left half written by an interrupted save", name)

    # loading
    def load(self, f=None, use_latest=True, strict=False):
        """Resumes from save_dir/last_checkpoint when there is one (model, optimizer, scheduler
        and the extra fields such as "iteration" are restored and returned; every model tensor
        must fit). Otherwise loads only the model weights from ``f`` (MODEL.WEIGHT): a checkpoint
        given that way never brings its optimizer, scheduler or iteration, so fine-tuning starts
        at iteration 0; tensors that do not fit keep their initialisation and are listed, unless
        ``strict`` (evaluation), which raises CheckpointMismatchError naming them."""
        if use_latest and self.has_checkpoint():
            path = self.get_checkpoint_file()
            self.logger.info("resuming from %s", path)
            checkpoint = self._load_file(path)
            self.class_names = recorded_class_names(checkpoint)
            self._load_model(checkpoint, strict=True, source=path)
            if self.optimizer is not None and "optimizer" in checkpoint:
                self.optimizer.load_state_dict(checkpoint.pop("optimizer"))
            if self.scheduler is not None and "scheduler" in checkpoint:
                self.scheduler.load_state_dict(checkpoint.pop("scheduler"))
            return checkpoint
        if not f:
            self.logger.info("no checkpoint found: the model starts from its initialisation")
            return {}
        self.logger.info("loading weights from %s", f)
        checkpoint = self._load_file(f)
        self.class_names = recorded_class_names(checkpoint)
        ema = ema_weights_of(checkpoint)
        if ema is not None:  # what its evaluations used (MODEL.EMA)
            self.logger.info("%s holds an exponential moving average of the weights: loading the averaged ones", f)
            checkpoint["model"] = ema
        best = checkpoint.get("best")
        if isinstance(best, dict) and {"metric", "value", "iteration"} <= set(best):
            self.logger.info("%s: the best %s, %.4f, at iteration %d", f, best["metric"], best["value"],
                             best["iteration"])
        self._load_model(checkpoint, strict=strict, source=f)
        ignored = sorted(k for k in checkpoint if k not in ("model", "conventions", "class_names", "ema", "best"))
        if ignored:
            self.logger.info("weights only: %s of %s not used (a training run starts at iteration 0)",
                             ", ".join(ignored), f)
        return {}

    def _load_file(self, f):
        return read_weights(f, cfg=self.cfg, model_state_dict=self.model.state_dict(), logger=self.logger)

    def _load_model(self, checkpoint, strict=False, source="the checkpoint"):
        return load_state_dict(self.model, checkpoint.pop("model"), logger=self.logger, strict=strict, source=source)


class DetectronCheckpointer(Checkpointer):
    """A Checkpointer that knows the config: it records the config's conventions in what it
    saves, and reads catalog://, Caffe2, torchvision and mmdetection weights for the model the
    config builds (MODEL.RESNETS.STAGE_WITH_DCN, MODEL.TRUST_WEIGHT_FILE, conventions checked)."""

    def __init__(self, cfg, model, optimizer=None, scheduler=None, save_dir="", save_to_disk=None, logger=None):
        super().__init__(model, optimizer, scheduler, save_dir, save_to_disk, logger)
        self.cfg = cfg
