"""Matcher: each prediction (anchor) gets the ground truth it overlaps most, or a
negative code (Faster R-CNN style IoU assignment)."""
import torch


class Matcher:
    BELOW_LOW_THRESHOLD = -1
    BETWEEN_THRESHOLDS = -2

    def __init__(self, high_threshold, low_threshold, allow_low_quality_matches=False):
        if low_threshold > high_threshold:
            raise ValueError("Matcher: low_threshold ({}) > high_threshold ({})".format(low_threshold, high_threshold))
        self.high_threshold = high_threshold
        self.low_threshold = low_threshold
        self.allow_low_quality_matches = allow_low_quality_matches

    def __call__(self, match_quality_matrix):
        """match_quality_matrix [G, A] -> [A] index of the matched gt, or BELOW_LOW_THRESHOLD /
        BETWEEN_THRESHOLDS. With allow_low_quality_matches, every gt keeps its best anchor(s)."""
        if match_quality_matrix.numel() == 0:
            return torch.full((match_quality_matrix.shape[1],), self.BELOW_LOW_THRESHOLD, dtype=torch.int64,
                              device=match_quality_matrix.device)
        matched_vals, matches = match_quality_matrix.max(dim=0)
        all_matches = matches.clone() if self.allow_low_quality_matches else None
        matches[matched_vals < self.low_threshold] = self.BELOW_LOW_THRESHOLD
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[between] = self.BETWEEN_THRESHOLDS
        if self.allow_low_quality_matches:
            best_per_gt, _ = match_quality_matrix.max(dim=1)
            _, pred_inds = torch.nonzero(match_quality_matrix == best_per_gt[:, None], as_tuple=True)
            matches[pred_inds] = all_matches[pred_inds]
        return matches
