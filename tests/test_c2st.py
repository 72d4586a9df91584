"""The classifier two-sample test: chance on one population, certainty on two plainly different ones."""

import numpy as np
import pytest

from galgen.c2st import c2st, clopper_pearson
from galgen.errors import InputError


def stamps(n, *, seed, tint=0.0):
    rng = np.random.default_rng(seed)
    return (rng.normal(0.0, 0.01, (n, 3, 16, 16)) + tint).astype(np.float32)


def test_clopper_pearson_is_the_exact_binomial_interval():
    low, high = clopper_pearson(5, 10)
    assert (round(low, 4), round(high, 4)) == (0.1871, 0.8129)
    assert clopper_pearson(0, 10)[0] == 0.0 and clopper_pearson(10, 10)[1] == 1.0


def test_one_population_is_chance_and_a_tinted_sky_is_found_at_once():
    noise = [0.01, 0.01, 0.01]
    same = c2st(stamps(60, seed=1), stamps(60, seed=2), noise=noise, epochs=3, seed=0)
    assert same.scored == 120 and same.interval[0] < 0.5 < same.interval[1]
    seen = []
    tinted = c2st(stamps(60, seed=1), stamps(60, seed=3, tint=0.01), noise=noise, epochs=3, seed=0,
                  advance=seen.append)
    assert tinted.accuracy > 0.9 and tinted.interval[0] > 0.5  # a one-sigma sky offset, as the mocks have
    assert sum(seen) == 2 * 3 * 60  # two folds x epochs x a training fold of 60 images
    assert "held-out accuracy" in tinted.message and tinted.to_dict()["scored"] == 120
    with pytest.raises(InputError, match="at least 4"):
        c2st(stamps(3, seed=1), stamps(3, seed=2), noise=noise)
