from .distributed import DistributedSampler
from .grouped_batch_sampler import GroupedBatchSampler
from .iteration_based_batch_sampler import IterationBasedBatchSampler
from .repeat_factor import RepeatFactorTrainingSampler, repeat_factors

__all__ = ["DistributedSampler", "GroupedBatchSampler", "IterationBasedBatchSampler", "RepeatFactorTrainingSampler",
           "repeat_factors"]
