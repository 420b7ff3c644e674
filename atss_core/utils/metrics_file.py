"""OUTPUT_DIR/metrics.json: one JSON object per line, as detectron2 writes it. Training lines
hold "iteration" and the scalars of a log period; evaluation lines hold "iteration" and the
figures as "<dataset>/<metric>". The file is only ever appended to. A resumed run repeats the
iterations after its checkpoint: a line whose (iteration, kind) the file already holds is not
written again, so each evaluation appears exactly once."""
import json
import logging
import math
import os

TRAINING, EVALUATION = "training", "evaluation"


def _kind(record):
    return EVALUATION if any("/" in key for key in record) else TRAINING


def read_metrics(path):
    """The records of a metrics.json, in order (an incomplete last line, left by a kill in the
    middle of a write, is skipped)."""
    records = []
    if not os.path.isfile(path):
        return records
    with open(path) as f:
        for line in f:
            if not line.endswith("\n"):
                break
            if line.strip():
                records.append(json.loads(line))
    return records


def _finite_or_none(value):
    value = float(value)
    return value if math.isfinite(value) else None  # JSON has no nan


class MetricsFile:
    def __init__(self, path, logger=None):
        self.path = path
        self.logger = logger or logging.getLogger(__name__)
        self._drop_incomplete_tail()
        self.written = {(record.get("iteration"), _kind(record)) for record in read_metrics(path)}

    def _drop_incomplete_tail(self):
        if not os.path.isfile(self.path):
            return
        with open(self.path, "rb+") as f:
            data = f.read()
            if data and not data.endswith(b"\n"):
                keep = data.rfind(b"\n") + 1
                f.truncate(keep)
                self.logger.warning("%s: removed an incomplete last line (%d bytes), left by an interrupted write",
                                    self.path, len(data) - keep)

    def has(self, iteration, kind):
        return (iteration, kind) in self.written

    def write(self, iteration, values):
        """Appends {"iteration": iteration, **values} unless the file holds that iteration's line
        of the same kind; returns whether it wrote."""
        record = {"iteration": int(iteration)}
        record.update((key, _finite_or_none(value)) for key, value in values.items())
        key = (record["iteration"], _kind(record))
        if key in self.written:
            return False
        os.makedirs(os.path.dirname(os.path.abspath(self.path)), exist_ok=True)
        with open(self.path, "a") as f:
            f.write(json.dumps(record) + "\n")
            f.flush()
            os.fsync(f.fileno())
        self.written.add(key)
        return True


def flatten_report(dataset_name, report):
    """An evaluation report (COCO: {"bbox": {...}, "per_class": {...}}; VOC: {"mAP", "per_class"})
    -> {"<dataset>/AP": ..., "<dataset>/AP-<class>": ..., "<dataset>/mAP": ...}."""
    flat = {}
    for name, value in report.get("bbox", {}).items():
        flat["{}/{}".format(dataset_name, name)] = value
    if "mAP" in report:
        flat["{}/mAP".format(dataset_name)] = report["mAP"]
    prefix = "AP-" if "bbox" in report or "mAP" in report else ""
    for name, value in report.get("per_class", {}).items():
        flat["{}/{}{}".format(dataset_name, prefix, name)] = value
    return flat
