"""Boxes, labels and markers drawn on BGR images with OpenCV: the one place the demos, the
dataset browser and the assignment pictures take their colours and strokes from."""
import cv2
import numpy as np

IGNORE_COLOUR = (160, 160, 160)


def palette(index):
    """A bright BGR colour, the same for the same index in every picture."""
    rng = np.random.RandomState(index * 7919 + 17)
    return tuple(int(c) for c in rng.randint(64, 256, size=3))


def label_name(names, label):
    """``names[label]`` (names indexed by label, background first), else "class <label>"."""
    return names[label] if names and 0 <= label < len(names) else "class {}".format(label)


def stroke_scale(canvas):
    return max(0.35, min(canvas.shape[:2]) / 600.0)


def draw_label(canvas, text, x, y, colour, scale):
    """``text`` on a filled box of ``colour`` whose lower-left corner is at (x, y), kept inside."""
    (tw, th), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, 1)
    y = max(int(y), th + 2)
    x = min(max(int(x), 0), max(canvas.shape[1] - tw - 2, 0))
    cv2.rectangle(canvas, (x, y - th - 2), (x + tw + 2, y), colour, -1)
    cv2.putText(canvas, text, (x + 1, y - 2), cv2.FONT_HERSHEY_SIMPLEX, 0.5 * scale, (0, 0, 0), 1, cv2.LINE_AA)


def draw_box(canvas, box, colour, text=None, dashed=False, thickness=None):
    """A box (x1, y1, x2, y2) on ``canvas`` in place, with an optional label above it;
    ``dashed`` for regions that are not objects (ignore regions)."""
    scale = stroke_scale(canvas)
    thickness = thickness or max(1, int(2 * scale))
    x1, y1, x2, y2 = [int(round(v)) for v in box]
    if dashed:
        step = max(4, int(8 * scale))
        for start in range(x1, x2, 2 * step):
            end = min(start + step, x2)
            cv2.line(canvas, (start, y1), (end, y1), colour, thickness)
            cv2.line(canvas, (start, y2), (end, y2), colour, thickness)
        for start in range(y1, y2, 2 * step):
            end = min(start + step, y2)
            cv2.line(canvas, (x1, start), (x1, end), colour, thickness)
            cv2.line(canvas, (x2, start), (x2, end), colour, thickness)
    else:
        cv2.rectangle(canvas, (x1, y1), (x2, y2), colour, thickness)
    if text:
        draw_label(canvas, text, x1, y1, colour, scale)
    return canvas


def titled(canvas, title):
    """``canvas`` with a white band holding ``title`` on top."""
    band = np.full((28, canvas.shape[1], 3), 255, dtype=np.uint8)
    cv2.putText(band, title, (6, 20), cv2.FONT_HERSHEY_SIMPLEX, 0.55, (0, 0, 0), 1, cv2.LINE_AA)
    return np.concatenate([band, canvas], axis=0)


def grid(panels, columns=2):
    """Panels (BGR images, padded white to the largest) in rows of ``columns``."""
    height = max(p.shape[0] for p in panels)
    width = max(p.shape[1] for p in panels)
    padded = []
    for panel in panels:
        cell = np.full((height, width, 3), 255, dtype=np.uint8)
        cell[:panel.shape[0], :panel.shape[1]] = panel
        padded.append(cell)
    while len(padded) % columns:
        padded.append(np.full((height, width, 3), 255, dtype=np.uint8))
    rows = [np.concatenate(padded[i:i + columns], axis=1) for i in range(0, len(padded), columns)]
    return np.concatenate(rows, axis=0)
