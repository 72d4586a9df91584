"""Classifier two-sample test: can a small CNN tell population A from population B? (0.5 = no)

    python benchmarks/c2st.py A/ B/ [--epochs 12] [--seed 0]

Both sets are read as flux cubes (galgen.populations), stretched per band as asinh(flux / sky RMS) (the
simulate sky RMS, so the network sees structure at the noise level), balanced to the smaller
size, and split in two halves. A CNN trained on one half of both sets (with random flips and
quarter turns: galaxies have no orientation) scores the other half, and the other way round, so
every image is classified once by a network that never saw it. Printed: held-out accuracy over
all of them with its 95 % Clopper-Pearson interval. A same-population pair gives the floor.
(The "discriminator test" of the two-models paper in ../shared/papers/.)
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch
from scipy.stats import beta
from torch import nn

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from galgen.simulate import SKY_SIGMA  # noqa: E402
from galgen.populations import load_population  # noqa: E402


def stretch(flux: np.ndarray) -> torch.Tensor:
    sky = np.asarray(SKY_SIGMA, dtype=np.float32)[None, :, None, None]
    return torch.from_numpy(np.arcsinh(np.asarray(flux, dtype=np.float32) / sky))


def classifier(channels: int) -> nn.Module:
    def block(cin, cout):
        return nn.Sequential(nn.Conv2d(cin, cout, 3, padding=1), nn.BatchNorm2d(cout), nn.ReLU(), nn.MaxPool2d(2))

    return nn.Sequential(block(channels, 32), block(32, 64), block(64, 64), nn.Conv2d(64, 64, 3, padding=1),
                         nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(64, 1))


def augment(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    turns = int(torch.randint(4, (1,), generator=generator))
    x = torch.rot90(x, turns, dims=(-2, -1))
    return x.flip(-1) if bool(torch.randint(2, (1,), generator=generator)) else x


def fit_and_score(train_x, train_y, test_x, *, epochs: int, seed: int) -> np.ndarray:
    torch.manual_seed(seed)
    generator = torch.Generator().manual_seed(seed)
    net = classifier(train_x.shape[1])
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = nn.BCEWithLogitsLoss()
    for _ in range(epochs):
        net.train()
        order = torch.randperm(len(train_x), generator=generator)
        for start in range(0, len(order), 64):
            rows = order[start : start + 64]
            loss = loss_fn(net(augment(train_x[rows], generator)).squeeze(1), train_y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    net.eval()
    with torch.no_grad():
        return (net(test_x).squeeze(1) > 0).float().numpy()


def c2st(a: np.ndarray, b: np.ndarray, *, epochs: int = 12, seed: int = 0) -> tuple[float, tuple[float, float], int]:
    """Held-out accuracy, its 95 % interval and the number of images scored."""
    rng = np.random.default_rng(seed)
    n = min(len(a), len(b))
    a, b = stretch(a[rng.permutation(len(a))[:n]]), stretch(b[rng.permutation(len(b))[:n]])
    x = torch.cat([a, b])
    y = torch.cat([torch.zeros(n), torch.ones(n)])
    fold = torch.from_numpy(np.concatenate([rng.permutation(n) % 2, rng.permutation(n) % 2]))
    correct = 0
    for k in (0, 1):
        train, test = fold != k, fold == k
        predicted = fit_and_score(x[train], y[train], x[test], epochs=epochs, seed=seed + k)
        correct += int((predicted == y[test].numpy()).sum())
    total = 2 * n
    low = beta.ppf(0.025, correct, total - correct + 1) if correct else 0.0
    high = beta.ppf(0.975, correct + 1, total - correct) if correct < total else 1.0
    return correct / total, (float(low), float(high)), total


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("a")
    parser.add_argument("b")
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    start = time.perf_counter()
    a, b = load_population([args.a]).flux, load_population([args.b]).flux
    accuracy, (low, high), total = c2st(a, b, epochs=args.epochs, seed=args.seed)
    print(f"C2ST {args.a} vs {args.b}: held-out accuracy {accuracy:.3f} [{low:.3f}, {high:.3f}] over {total} "
          f"images ({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
