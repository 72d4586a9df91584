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


def test_batchnorm_statistics_are_those_of_the_training_fold_before_scoring():
    """The classifier's eval-mode BatchNorm must use the training fold's own statistics: a running
    average of the last augmented batches once shifted every held-out logit below 0, and a network
    calling every image "A" scored exactly 0.5 on mocks it could tell apart (0.79 after this fix)."""
    import torch

    from galgen.c2st import _classifier, refit_batchnorm

    torch.manual_seed(0)
    net = _classifier(3)
    x = torch.randn(300, 3, 16, 16) * 2 + 5
    first = net[0][1]
    first.running_mean.fill_(100.0)  # a stale estimate, as a last batch can leave
    refit_batchnorm(net, x, batch=64)
    with torch.no_grad():
        features = net[0][0](x)
    assert torch.allclose(first.running_mean, features.mean(dim=(0, 2, 3)), atol=1e-4)
    assert torch.allclose(first.running_var, features.var(dim=(0, 2, 3)), rtol=0.02)
