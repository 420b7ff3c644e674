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
        return self.match_in_chunks([(0, match_quality_matrix)])

    def match_in_chunks(self, row_chunks):
        """The same matches from (first gt index, [C, A] rows) pairs that together form the
        [G, A] matrix in order (non-empty), never holding it whole: per anchor the running best,
        updated in place (ties keep the earlier gt, as max over the whole matrix does)."""
        matched_vals = matches = best_of_some_gt = None
        for first_gt, rows in row_chunks:
            vals, index = rows.max(dim=0)
            if matched_vals is None:
                matched_vals, matches = vals, index + first_gt
                best_of_some_gt = torch.zeros_like(matches, dtype=torch.bool)
            else:
                later = vals > matched_vals
                matched_vals[later] = vals[later]
                matches[later] = index[later] + first_gt
            if self.allow_low_quality_matches:
                best_per_gt, _ = rows.max(dim=1)
                best_of_some_gt |= (rows == best_per_gt[:, None]).any(dim=0)
        all_matches = matches.clone() if self.allow_low_quality_matches else None
        matches[matched_vals < self.low_threshold] = self.BELOW_LOW_THRESHOLD
        between = (matched_vals >= self.low_threshold) & (matched_vals < self.high_threshold)
        matches[between] = self.BETWEEN_THRESHOLDS
        if self.allow_low_quality_matches:
            pred_inds = best_of_some_gt.nonzero().squeeze(1)
            matches[pred_inds] = all_matches[pred_inds]
        return matches
