"""Classifier two-sample test: can a small CNN tell population A from population B? (0.5 = no).

The "discriminator test" of the two-models paper ("Galaxy Imaging with Generative Models: Insights
from a Two-Models Framework") and the C2ST of Lopez-Paz & Oquab (2017). Both sets are balanced to the smaller size and stretched per band as
asinh(flux / sky RMS), so the network sees structure at the noise level (sky tints, textures,
shapes the six SGD properties miss). Every image is put in one of two folds; a CNN trained on one
fold of both sets (with the eight flips and quarter turns: galaxies have no orientation) classifies
the other, and the other way round, so each image is scored once by a network that never saw it.
Before scoring, the BatchNorm layers' statistics are recomputed exactly over the training fold
(their running averages over the last, augmented batches can shift every held-out logit to one
side, and a network that calls every image "A" scores exactly 0.5: "indistinguishable" by
failure). The held-out accuracy comes with its Clopper-Pearson interval. Torch, so outside
galgen.metrics.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Callable

import numpy as np

from galgen.errors import InputError

EPOCHS = 12  # passes over the training fold (converged on 1000 vs 1000 galgen mocks and simulations)
BATCH = 64


@dataclass
class C2STResult:
    """Held-out accuracy of the classifier, its interval, and how it was measured."""

    accuracy: float
    interval: tuple[float, float]
    scored: int  # images classified (both sets, both folds)
    epochs: int
    seed: int
    seconds: float
    confidence: float = 0.95

    @property
    def message(self) -> str:
        low, high = self.interval
        return (f"classifier two-sample test: held-out accuracy {self.accuracy:.3f} [{low:.3f}, {high:.3f}] over "
                f"{self.scored} images (0.5 = indistinguishable)")

    def to_dict(self) -> dict:
        return {"accuracy": self.accuracy, "interval": list(self.interval), "scored": self.scored,
                "epochs": self.epochs, "seed": self.seed, "seconds": round(self.seconds, 3),
                "confidence": self.confidence, "message": self.message}


def clopper_pearson(correct: int, total: int, *, confidence: float = 0.95) -> tuple[float, float]:
    """Exact binomial interval of a proportion correct / total (Clopper & Pearson 1934)."""
    from scipy.stats import beta

    tail = (1 - confidence) / 2
    low = float(beta.ppf(tail, correct, total - correct + 1)) if correct else 0.0
    high = float(beta.ppf(1 - tail, correct + 1, total - correct)) if correct < total else 1.0
    return low, high


def c2st(a: np.ndarray, b: np.ndarray, *, noise, epochs: int = EPOCHS, seed: int = 0,
         advance: Callable[[int], None] | None = None) -> C2STResult:
    """Two-fold classifier two-sample test between flux stacks ``a`` and ``b`` (N, C, H, W).

    ``noise`` is the per-band sky RMS (flux) of the stretch asinh(flux / noise). ``advance(n)``
    counts training images seen (2 folds x epochs x the training fold).
    """
    import torch

    start = time.perf_counter()
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    if n < 4:
        raise InputError(f"the classifier test needs at least 4 galaxies per set, got {n}")
    noise = np.asarray(noise, dtype=np.float32)[None, :, None, None]
    pick = lambda stack: np.asarray(stack)[np.sort(rng.permutation(len(stack))[:n])]  # noqa: E731
    x = torch.from_numpy(np.arcsinh(np.nan_to_num(np.concatenate([pick(a), pick(b)]).astype(np.float32)) / noise))
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    fold = torch.from_numpy(np.concatenate([rng.permutation(n) % 2, rng.permutation(n) % 2]))
    correct = 0
    for k in (0, 1):
        train, test = fold != k, fold == k
        predicted = _fit_and_score(x[train], y[train], x[test], epochs=epochs, seed=seed + k, advance=advance)
        correct += int((predicted == y[test].numpy()).sum())
    return C2STResult(accuracy=correct / (2 * n), interval=clopper_pearson(correct, 2 * n), scored=2 * n,
                      epochs=epochs, seed=seed, seconds=time.perf_counter() - start)


def _classifier(channels: int):
    from torch import nn

    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(block(channels, 32), block(32, 64), block(64, 64), nn.Conv2d(64, 64, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))


def _augment(x, generator):
    import torch

    turns = int(torch.randint(4, (1,), generator=generator))
    x = torch.rot90(x, turns, dims=(-2, -1))
    return x.flip(-1) if bool(torch.randint(2, (1,), generator=generator)) else x


def _fit_and_score(train_x, train_y, test_x, *, epochs: int, seed: int, advance=None) -> np.ndarray:
    import torch
    from torch import nn

    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = _classifier(train_x.shape[1])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(train_x), generator=generator)
        for first in range(0, len(order), BATCH):
            rows = order[first : first + BATCH]
            loss = loss_fn(net(_augment(train_x[rows], generator)).squeeze(1), train_y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            if advance is not None:
                advance(len(rows))
    refit_batchnorm(net, train_x)
    net.eval()
    with torch.no_grad():
        return (net(test_x).squeeze(1) > 0).float().numpy()


def refit_batchnorm(net, x, *, batch: int = 256) -> None:
    """Set every BatchNorm layer's running mean and variance to their average over ``x``.

    A cumulative average (momentum None) over near-equal batches (sizes differ by at most one):
    the statistics of the data the network was trained on, as eval mode assumes, instead of an
    exponential average dominated by the last batches."""
    import torch
    from torch import nn

    layers = [m for m in net.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    for layer in layers:
        layer.reset_running_stats()
        layer.momentum = None
    net.train()
    with torch.no_grad():
        for rows in torch.tensor_split(torch.arange(len(x)), max(1, -(-len(x) // batch))):
            net(x[rows])
