"""An exponential moving average of a model's weights (MODEL.EMA): after every optimiser step,
ema = d * ema + (1 - d) * weights with d = DECAY * (1 - exp(-updates / WARMUP_ITERS)), so that
the early, fast-moving weights are not averaged in for long (YOLOX's ModelEMA warm-up). Every
floating-point entry of the state dict is averaged (parameters and float buffers); the others
(integer counters) are copied."""
import contextlib
import math

import torch

from atss_core.utils.comm import unwrap_model



class ModelEMA:
    def __init__(self, model, decay, warmup_iters=2000):
        if not 0.0 < decay < 1.0:
            raise ValueError("MODEL.EMA.DECAY must be in (0, 1), got {}".format(decay))
        if warmup_iters <= 0:
            raise ValueError("MODEL.EMA.WARMUP_ITERS must be positive, got {}".format(warmup_iters))
        self.decay = decay
        self.warmup_iters = warmup_iters
        self.updates = 0
        self.weights = {name: value.detach().clone() for name, value in unwrap_model(model).state_dict().items()}

    def current_decay(self):
        return self.decay * (1 - math.exp(-self.updates / self.warmup_iters))

    @torch.no_grad()
    def update(self, model):
        self.updates += 1
        d = self.current_decay()
        for name, value in unwrap_model(model).state_dict().items():
            average = self.weights[name]
            if average.is_floating_point():
                average.mul_(d).add_(value.detach().to(average.dtype), alpha=1 - d)
            else:
                average.copy_(value)

    def state_dict(self):
        """What checkpoints hold under "ema" (on the CPU, like the rest of a checkpoint)."""
        return {"decay": self.decay, "warmup_iters": self.warmup_iters, "updates": self.updates,
                "weights": {name: value.detach().cpu().clone() for name, value in self.weights.items()}}

    def load_state_dict(self, state):
        missing = set(self.weights) - set(state["weights"])
        if missing:
            raise KeyError("the checkpoint's EMA weights lack {} entries (e.g. {}): it was saved by another "
                           "model".format(len(missing), sorted(missing)[0]))
        self.updates = int(state["updates"])
        for name, average in self.weights.items():
            average.copy_(state["weights"][name])

    @contextlib.contextmanager
    def applied_to(self, model):
        """Within the block ``model`` holds the averaged weights; its own come back afterwards."""
        plain = unwrap_model(model)
        own = {name: value.detach().clone() for name, value in plain.state_dict().items()}
        plain.load_state_dict(self.weights)
        try:
            yield plain
        finally:
            plain.load_state_dict(own)

