"""A picture of a training run from its records (the lines of metrics.json, or the quickstart's
per-iteration history): the losses, the learning rate and, when the run was evaluated during
training, the chosen metrics against the iteration."""


def default_metrics(records):
    """The headline metric of each evaluated dataset: "<dataset>/AP" (COCO) or "/mAP" (VOC)."""
    keys = []
    for record in records:
        for key in record:
            if key.endswith(("/AP", "/mAP")) and key not in keys:
                keys.append(key)
    return keys


def plot_metrics(records, path, metrics=None, title=None):
    """Writes a PNG to ``path``; ``metrics``: the evaluation keys to draw (default_metrics when
    None). Returns the metric keys drawn."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    training = [r for r in records if any(k.startswith("loss") for k in r)]
    metrics = default_metrics(records) if metrics is None else list(metrics)
    evaluated = [(key, [(r["iteration"], r[key]) for r in records if r.get(key) is not None]) for key in metrics]
    evaluated = [(key, points) for key, points in evaluated if points]
    panels = (["loss", "lr"] if training else []) + (["metric"] if evaluated else [])
    if not panels:
        raise ValueError("nothing to draw: the records hold neither losses nor the metrics {}".format(metrics))
    fig, axes = plt.subplots(len(panels), 1, figsize=(8, 3 * len(panels)), sharex=True, squeeze=False)
    axes = dict(zip(panels, axes[:, 0]))
    if training:
        its = [r["iteration"] for r in training]
        loss_keys = sorted({k for r in training for k in r if k.startswith("loss_")})
        for key in loss_keys:
            axes["loss"].plot(its, [r.get(key) for r in training], label=key, linewidth=0.8)
        axes["loss"].plot(its, [r.get("loss", sum(r.get(k, 0.0) for k in loss_keys)) for r in training],
                          label="total", linewidth=1.2, color="black")
        axes["loss"].set_ylabel("loss")
        axes["loss"].legend()
        axes["lr"].plot(its, [r.get("lr") for r in training], color="tab:purple")
        axes["lr"].set_ylabel("learning rate")
    for key, points in evaluated:
        axes["metric"].plot([p[0] for p in points], [p[1] for p in points], marker="o", label=key.rsplit("/", 2)[-1]
                            if len(evaluated) == 1 else key)
    if evaluated:
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
    return [key for key, _ in evaluated]
