"""SOLVER.ACCUMULATE_STEPS under torchrun: two processes, each running its share of the batch
as two passes (DDP synchronising the last one), end with the weights of the one-pass run."""
import torch

from .test_train_test_net import TINY_MODEL, make_dataset, run


def test_two_processes_with_two_passes_each_train_as_one_pass(tmp_path):
    dataset = make_dataset(tmp_path / "data", n=8)
    config = tmp_path / "tiny.yaml"
    config.write_text(TINY_MODEL)
    common = ("SOLVER.MAX_ITER", "2", "SOLVER.IMS_PER_BATCH", "4", "SEED", "2", "TENSORBOARD.ENABLED", "False")
    final = {}
    for steps in ("1", "2"):
        out = tmp_path / "steps_{}".format(steps)
        log = run("train_net.py", str(config), out, dataset, *common, "SOLVER.ACCUMULATE_STEPS", steps,
                  launcher="torchrun", flags=["--skip-test"])
        assert "with 2 process(es)" in log
        final[steps] = torch.load(out / "model_final.pth", weights_only=True)["model"]
    assert "2 passes of 2 images per step" in log
    for name, value in final["1"].items():
        torch.testing.assert_close(final["2"][name], value, rtol=1e-4, atol=1e-5, msg=name)
