"""do_train on two gloo processes: the losses it logs are the averages over the processes."""
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from atss_core.engine.hooks import default_hooks
from atss_core.engine.trainer import do_train
from atss_core.structures.bounding_box import BoxList
from atss_core.structures.image_list import to_image_list


class RankScaledLoss(torch.nn.Module):
    """loss_a = (rank + 1) * w and loss_b = 10 * (rank + 1) * w, so that every process sees a
    different loss and the averages over two processes are 1.5 * w and 15 * w."""

    def __init__(self, rank):
        super().__init__()
        self.rank = rank
        self.w = torch.nn.Parameter(torch.ones(()))

    def forward(self, images, targets):
        scale = float(self.rank + 1)
        return {"loss_a": scale * self.w, "loss_b": 10 * scale * self.w}


class NoCheckpoint:
    def save(self, name, **kwargs):
        pass


def _worker(rank, init_file, result_file):
    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2)
    try:
        model = RankScaledLoss(rank)
        optimizer = torch.optim.SGD(model.parameters(), lr=0.0)  # w stays 1: the losses stay known
        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda _: 1.0)
        batch = (to_image_list([torch.zeros(3, 8, 8)]), [BoxList(torch.zeros(0, 4), (8, 8))], (0,))
        history = []
        state = do_train(model, [batch] * 3, optimizer, scheduler, None, torch.device("cpu"), 0, {"iteration": 0},
                         hooks=default_hooks(NoCheckpoint(), checkpoint_period=0, history=history))
        torch.save({"history": history, "loss_global_avg": state.meters.loss.global_avg}, result_file.format(rank))
        # both ranks reach the teardown together: gloo aborts a process whose peer closes the
        # connection while its own threads still use it (seen once as SIGABRT in a clean clone)
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_logged_losses_are_averaged_over_processes(tmp_path):
    result_file = str(tmp_path / "rank{}.pth")
    mp.spawn(_worker, args=(str(tmp_path / "init"), result_file), nprocs=2, join=True)
    for rank in range(2):
        result = torch.load(result_file.format(rank))
        assert [h["iteration"] for h in result["history"]] == [1, 2, 3]
        for entry in result["history"]:
            assert entry["loss_a"] == 1.5 and entry["loss_b"] == 15.0  # not this rank's own 1 / 2 and 10 / 20
        assert result["loss_global_avg"] == 16.5


def _resume_worker(rank, init_file, result_file, iterations):
    from atss_core.engine.defaults import check_same_start

    dist.init_process_group("gloo", init_method="file://" + init_file, rank=rank, world_size=2)
    try:
        try:
            check_same_start({"iteration": iterations[rank], "seed": 3})
            outcome = "ok"
        except RuntimeError as error:
            outcome = str(error)
        torch.save(outcome, result_file.format(rank))
        dist.barrier()
    finally:
        dist.destroy_process_group()


def test_processes_that_resumed_from_different_checkpoints_are_stopped(tmp_path):
    result_file = str(tmp_path / "rank{}.pth")
    for iterations, name in (((20, 20), "same"), ((20, 15), "different")):
        mp.spawn(_resume_worker, args=(str(tmp_path / name), result_file, iterations), nprocs=2, join=True)
        outcomes = [torch.load(result_file.format(rank)) for rank in range(2)]
        if name == "same":
            assert outcomes == ["ok", "ok"]
        else:  # both stop, with the same message naming each rank's start
            assert outcomes[0] == outcomes[1] and "resumed from different checkpoints" in outcomes[0]
            assert "0: (20, 3), 1: (15, 3)" in outcomes[0]
