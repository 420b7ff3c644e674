"""A picture of training runs from their records (the lines of metrics.json, or the
quickstart's per-iteration history): the losses, the learning rate and, when a run was
evaluated during training, the chosen metrics against the iteration. Several runs are drawn
over each other (their total loss, learning rate and metrics), one colour per run."""


def default_metrics(records):
    """The headline metric of each evaluated dataset: "<dataset>/AP" (COCO) or "/mAP" (VOC)."""
    keys = []
    for record in records:
        for key in record:
            if key.endswith(("/AP", "/mAP")) and key not in keys:
                keys.append(key)
    return keys


def _training(records):
    return [r for r in records if any(k.startswith("loss") for k in r)]


def _total_loss(record, loss_keys):
    return record.get("loss", sum(record.get(k, 0.0) for k in loss_keys))


def plot_metrics(runs, path, metrics=None, title=None):
    """``runs``: {run name: records}. Writes a PNG to ``path``; ``metrics``: the evaluation keys
    to draw (default_metrics of each run when None). Returns the metric keys drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    single = len(runs) == 1
    curves = []  # (run, key, points)
    for run, records in runs.items():
        for key in (default_metrics(records) if metrics is None else metrics):
            points = [(r["iteration"], r[key]) for r in records if r.get(key) is not None]
            if points:
                curves.append((run, key, points))
    trained = {run: _training(records) for run, records in runs.items() if _training(records)}
    panels = (["loss", "lr"] if trained else []) + (["metric"] if curves else [])
    if not panels:
        raise ValueError("nothing to draw: the records hold neither losses nor the metrics {}".format(metrics))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3 * len(panels)), sharex=True, squeeze=False)
    axes = dict(zip(panels, axes[:, 0]))
    for run, training in trained.items():
        its = [r["iteration"] for r in training]
        loss_keys = sorted({k for r in training for k in r if k.startswith("loss_")})
        if single:  # one run: each loss term, and the total
            for key in loss_keys:
                axes["loss"].plot(its, [r.get(key) for r in training], label=key, linewidth=0.8)
        axes["loss"].plot(its, [_total_loss(r, loss_keys) for r in training], linewidth=1.2,
                          label="total" if single else run, color="black" if single else None)
        axes["lr"].plot(its, [r.get("lr") for r in training], label=None if single else run)
    if trained:
        axes["loss"].set_ylabel("loss" if single else "total loss")
        axes["loss"].legend(fontsize=8)
        axes["lr"].set_ylabel("learning rate")
    for run, key, points in curves:
        name = key.rsplit("/", 1)[-1] if len({k for _, k, _ in curves}) == 1 else key
        axes["metric"].plot([p[0] for p in points], [p[1] for p in points], marker="o",
                            label=name if single else "{} {}".format(run, name))
    if curves:
        axes["metric"].set_ylabel("validation metric")
        axes["metric"].legend(fontsize=8)
    for axis in axes.values():
        axis.grid(alpha=0.3)
    axes[panels[-1]].set_xlabel("iteration")
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return sorted({key for _, key, _ in curves})
