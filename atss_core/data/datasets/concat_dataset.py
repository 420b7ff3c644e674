"""Concatenation of datasets that keeps get_img_info (needed for aspect-ratio grouping)."""
import bisect

from torch.utils.data.dataset import ConcatDataset as _ConcatDataset


class ConcatDataset(_ConcatDataset):
    def get_idxs(self, idx):
        dataset_idx = bisect.bisect_right(self.cumulative_sizes, idx)
        sample_idx = idx if dataset_idx == 0 else idx - self.cumulative_sizes[dataset_idx - 1]
        return dataset_idx, sample_idx

    def get_img_info(self, idx):
        dataset_idx, sample_idx = self.get_idxs(idx)
        return self.datasets[dataset_idx].get_img_info(sample_idx)

    def get_groundtruth(self, idx):
        dataset_idx, sample_idx = self.get_idxs(idx)
        return self.datasets[dataset_idx].get_groundtruth(sample_idx)

    @property
    def num_categories(self):
        return max(getattr(d, "num_categories", 0) for d in self.datasets)

    def class_names(self):
        """The datasets' common class names (label order), None when they do not agree."""
        names = [d.class_names() if hasattr(d, "class_names") else None for d in self.datasets]
        return names[0] if all(n == names[0] for n in names) else None
