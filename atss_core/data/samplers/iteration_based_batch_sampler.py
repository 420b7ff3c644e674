"""Re-runs a batch sampler epoch after epoch until a number of iterations is reached."""
from torch.utils.data.sampler import BatchSampler


class IterationBasedBatchSampler(BatchSampler):
    """Yields batches for iterations start_iter + 1 .. num_iterations.

    Epoch e draws its order with ``sampler.set_epoch(e)``; a run resumed at ``start_iter``
    skips the batches already consumed in the current epoch, so it sees exactly the batches
    an uninterrupted run would have seen."""

    def __init__(self, batch_sampler, num_iterations, start_iter=0):
        self.batch_sampler = batch_sampler
        self.num_iterations = num_iterations
        self.start_iter = start_iter

    def _set_epoch(self, epoch):
        sampler = getattr(self.batch_sampler, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)

    def __iter__(self):
        iteration = 0
        epoch = 0
        while iteration < self.num_iterations:
            self._set_epoch(epoch)
            batches = list(self.batch_sampler)
            if not batches:
                raise ValueError("the batch sampler yields no batch: dataset smaller than one batch?")
            if iteration + len(batches) <= self.start_iter:  # an epoch finished before the resume point
                iteration += len(batches)
                epoch += 1
                continue
            for batch in batches:
                iteration += 1
                if iteration > self.num_iterations:
                    return
                if iteration > self.start_iter:
                    yield batch
            epoch += 1

    def __len__(self):
        return self.num_iterations - self.start_iter
