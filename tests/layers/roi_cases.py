"""Feature maps and rois shared by the ROIAlign and ROIPool tests."""
import torch


def make_rois(num, batch, height, width, spatial_scale, generator, dtype=torch.float32):
    """Random rois in image pixels, some of them partly or fully outside the map."""
    img_h, img_w = height / spatial_scale, width / spatial_scale
    x1 = torch.rand(num, generator=generator, dtype=torch.float64) * img_w * 1.2 - 0.1 * img_w
    y1 = torch.rand(num, generator=generator, dtype=torch.float64) * img_h * 1.2 - 0.1 * img_h
    w = torch.rand(num, generator=generator, dtype=torch.float64) * img_w / 2
    h = torch.rand(num, generator=generator, dtype=torch.float64) * img_h / 2
    index = torch.randint(0, batch, (num,), generator=generator).double()
    return torch.stack([index, x1, y1, x1 + w, y1 + h], dim=1).to(dtype)


def edge_rois(height, width, spatial_scale, dtype=torch.float32):
    """Degenerate rois: zero size, a single pixel, outside the map, negative, the whole map."""
    img_h, img_w = height / spatial_scale, width / spatial_scale
    return torch.tensor(
        [
            [0, 10, 10, 10, 10],  # zero area
            [0, 3, 4, 4, 5],  # about one pixel
            [0, img_w + 50, img_h + 50, img_w + 90, img_h + 80],  # fully outside
            [0, -40, -30, -5, -2],  # negative coordinates
            [0, -20, -20, img_w + 20, img_h + 20],  # larger than the map
            [0, 0, 0, img_w - 1, img_h - 1],  # the whole map
        ],
        dtype=dtype,
    )
