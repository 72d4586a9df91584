"""The one centre-crop convention, and the one band order."""

import numpy as np
import pytest

from galgen.bands import band_order
from galgen.errors import InputError


def test_centre_crops_keep_the_target_pixel_central_whatever_the_parities():
    from galgen.io.regrid import centre_crop, centre_square

    data = np.zeros((1, 7, 6))
    data[0, 7 // 2, 6 // 2] = 1  # the target pixel (W // 2, H // 2)
    for h, w in [(3, 3), (4, 4), (3, 4), (6, 5), (1, 1)]:
        crop = centre_crop(data, (h, w))
        assert crop.shape == (1, h, w) and crop[0, h // 2, w // 2] == 1, (h, w)
    assert centre_square(data).shape == (1, 6, 6) and centre_square(data)[0, 3, 3] == 1
    with pytest.raises(ValueError, match="cannot crop"):
        centre_crop(data, 8)


def test_bands_sort_blue_to_red_and_unknown_ones_first_only_when_asked():
    assert band_order("zrg") == [2, 1, 0] and band_order("grz") == [0, 1, 2]
    with pytest.raises(InputError, match="unknown: ?"):
        band_order("g?z")
    assert band_order("z?g", strict=False) == [1, 2, 0]
