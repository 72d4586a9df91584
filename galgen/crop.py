"""Centre crops: the one convention for cutting the middle out of an image stack.

Pixel ``(W // 2, H // 2)`` of the input (the target of a survey cutout) lands on pixel
``(w // 2, h // 2)`` of the crop, whatever the parities of the two sizes.
"""

from __future__ import annotations

import numpy as np


def centre_crop(data: np.ndarray, size) -> np.ndarray:
    """The central ``size`` (an int, or (h, w)) of ``(..., H, W)`` data, keeping the target pixel central."""
    h, w = (size, size) if np.ndim(size) == 0 else size
    height, width = data.shape[-2:]
    if h > height or w > width:
        raise ValueError(f"cannot crop {h}x{w} out of {height}x{width}")
    top, left = height // 2 - h // 2, width // 2 - w // 2
    return data[..., top : top + h, left : left + w]


def centre_square(data: np.ndarray) -> np.ndarray:
    """The largest centred square of ``(..., H, W)`` data."""
    return centre_crop(data, min(data.shape[-2:]))
