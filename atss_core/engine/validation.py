"""Evaluation during training (SOLVER.TEST_PERIOD): every N iterations and at the end, every
process predicts on the validation datasets and the main process evaluates, appends the figures
to OUTPUT_DIR/metrics.json and keeps OUTPUT_DIR/model_best.pth, the weights at the evaluation
with the best SOLVER.BEST_METRIC. The best record lives in the checkpoints' state (arguments
["best"]), so a resumed run goes on comparing against it."""
import contextlib
import logging

from atss_core.config.paths_catalog import dataset_folder_name
from atss_core.engine.hooks import HookBase
from atss_core.engine.launch import group_store
from atss_core.utils.comm import (get_rank, get_world_size, is_main_process, synchronize, unwrap_model,
                                   wait_for_main_process)
from atss_core.utils.metrics_file import flatten_report

BEST_NAME = "model_best"
REPORT_METRICS = ("AP", "AP50", "AP75", "APs", "APm", "APl", "mAP")  # COCO's six, VOC's mAP; or "AP-<class>"


def validation_datasets(cfg):
    """DATASETS.VAL, or DATASETS.TEST when no validation split is named."""
    return tuple(cfg.DATASETS.VAL) or tuple(cfg.DATASETS.TEST)


class BestMetric:
    """SOLVER.BEST_METRIC: "AP" (a metric of the first validation dataset), "<dataset>/<metric>",
    either with a leading "-" when lower is better."""

    def __init__(self, spec, datasets):
        if not spec or spec in ("-", "/"):
            raise ValueError("SOLVER.BEST_METRIC is empty: name a metric such as AP, AP50 or mAP")
        if not datasets:
            raise ValueError("SOLVER.TEST_PERIOD needs a dataset to evaluate on: set DATASETS.VAL (or DATASETS.TEST)")
        self.spec = spec
        self.sign = -1.0 if spec.startswith("-") else 1.0
        name = spec.lstrip("-")
        metric = name.rsplit("/", 1)[-1]
        if metric not in REPORT_METRICS and not metric.startswith("AP-"):
            raise ValueError("SOLVER.BEST_METRIC {!r} names no metric of an evaluation report: {} (one of {}, or "
                             "AP-<class name>)".format(spec, metric, ", ".join(REPORT_METRICS)))
        tags = [dataset_folder_name(d) for d in datasets]  # the datasets as metrics.json names them
        if "/" in name:
            dataset = name.rsplit("/", 1)[0]
            if dataset not in datasets and dataset not in tags:
                raise ValueError("SOLVER.BEST_METRIC {!r} names dataset {!r}, which is not evaluated during training "
                                 "(the validation datasets: {})".format(spec, dataset, ", ".join(datasets)))
            self.key = "{}/{}".format(dataset_folder_name(dataset), metric)
        else:
            self.key = "{}/{}".format(tags[0], name)

    def value_in(self, figures):
        """(key, value) of this metric among an evaluation's flat figures; VOC's "mAP" answers
        for the default "AP"."""
        key = self.key
        if key not in figures and key.endswith("/AP") and key[:-3] + "/mAP" in figures:
            key = key[:-3] + "/mAP"
        if key not in figures:
            raise KeyError("SOLVER.BEST_METRIC {!r}: the evaluation has no figure {!r}; it has: {}".format(
                self.spec, key, ", ".join(sorted(figures))))
        return key, figures[key]

    def improves(self, value, best):
        if value is None or value != value:  # nan: no ground truth of that class, never the best
            return False
        return best is None or self.sign * value > self.sign * best["value"]


class PeriodicEvaluation(HookBase):
    """``evaluate(model, iteration)`` runs on every process and returns {dataset: report} on the
    main one (None elsewhere). ``ema`` (engine/ema.py): the averaged weights are evaluated and
    kept as the best. ``metrics_file``: the main process's MetricsFile."""

    def __init__(self, period, evaluate, best_metric, checkpointer, metrics_file=None, ema=None, class_names=None,
                 logger=None):
        if period <= 0:
            raise ValueError("SOLVER.TEST_PERIOD must be positive for periodic evaluation, got {}".format(period))
        self.period = period
        self.evaluate = evaluate
        self.best_metric = best_metric
        self.checkpointer = checkpointer
        self.metrics_file = metrics_file
        self.ema = ema
        self.class_names = class_names
        self.logger = logger or logging.getLogger("atss_core.trainer")

    def before_train(self, state):
        best = state.arguments.get("best")
        if best:
            self.logger.info("best so far: %s %.4f at iteration %d", best["metric"], best["value"], best["iteration"])

    def due(self, state):
        return state.iteration % self.period == 0 or state.iteration == state.max_iter

    def after_step(self, state):
        if not self.due(state):
            return
        iteration = state.iteration
        weights = self.ema.applied_to(state.model) if self.ema is not None else contextlib.nullcontext(
            unwrap_model(state.model))
        with weights as model:
            self.logger.info("evaluation at iteration %d%s", iteration, " (EMA weights)" if self.ema else "")
            reports = self.evaluate(model, iteration)
            if is_main_process():
                self._record(state, reports, model)
        state.model.train()
        self._wait_for_main(iteration)

    def _record(self, state, reports, model):
        iteration = state.iteration
        figures = {}
        for name, report in reports.items():
            if report is not None:
                figures.update(flatten_report(dataset_folder_name(name), report))
        if self.metrics_file is not None and not self.metrics_file.write(iteration, figures):
            self.logger.info("metrics.json already holds the evaluation of iteration %d (a resumed run repeats it): "
                             "the first one is kept", iteration)
        key, value = self.best_metric.value_in(figures)
        best = state.arguments.get("best")
        if not self.best_metric.improves(value, best):
            if best:
                self.logger.info("%s %s at iteration %d; the best stays %.4f at iteration %d", key, value, iteration,
                                 best["value"], best["iteration"])
            return
        record = {"metric": key, "value": float(value), "iteration": iteration}
        extra = {"iteration": iteration, "best": record}
        if self.class_names:
            extra["class_names"] = list(self.class_names)
        path = self.checkpointer.save_weights(BEST_NAME, model.state_dict(), **extra)
        state.arguments["best"] = record
        self.logger.info("new best %s %.4f at iteration %d%s", key, value, iteration,
                         ": saved to {}".format(path) if path else "")

    def _wait_for_main(self, iteration):
        """The other processes wait for the main one's evaluation without a deadline (it may be
        longer than DIST_TIMEOUT), polling the process group's store."""
        if get_world_size() == 1:
            return
        store = group_store()
        if store is None:  # a process group started elsewhere: a plain barrier
            synchronize("the evaluation at iteration {}".format(iteration))
            return
        key = "atss_core/evaluated/{}".format(iteration)
        if get_rank() == 0:
            store.set(key, "1")
        else:
            wait_for_main_process(store, get_rank(), get_world_size(), self.logger, key=key,
                                  what="evaluate iteration {}".format(iteration))

