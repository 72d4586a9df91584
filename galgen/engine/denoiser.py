"""A discrete DDPM network seen as a denoiser D(x, sigma) (Karras et al. 2022, k-diffusion).

The network was trained on the DDPM forward process x_t = sqrt(abar_t) x0 + sqrt(1 - abar_t) eps
(Ho et al. 2020; Smith et al. 2022 eq. 11). Dividing by sqrt(abar_t) gives the variance-exploding
form x = x0 + sigma_t eps with sigma_t = sqrt((1 - abar_t) / abar_t), in which every sampler works.
So for any sigma: scale x back to the network's input x_t = x / sqrt(1 + sigma^2), find the
(fractional) timestep whose sigma it is by interpolating log-sigma over the table, and turn the
network's output into D(x, sigma):

- "eps" (the paper's): the network predicts eps and D = x - sigma eps. An eps error e becomes a
  D error sigma e, so at large sigma the network must reproduce its input to a fraction of a
  per cent; what it misses lands in the mock's low frequencies (its sky level).
- "v" (Salimans & Ho 2022): the network predicts v = a eps - s x0 with a = sqrt(abar), s = sqrt(1 - abar),
  and D = a x_t - s v. v is eps at low noise and -x0 at high noise, so the error never grows with sigma.
  In EDM's terms (sigma_data = 1): c_skip = 1 / (1 + sigma^2), c_out = sigma / sqrt(1 + sigma^2).
- "edm" (Karras et al. 2022): the same preconditioning with the data's own scale sigma_data (the RMS
  of the training pixels): D = c_skip x + c_out F(c_in x, t(sigma)), c_skip = sd^2 / (sigma^2 + sd^2),
  c_out = sigma sd / sqrt(sigma^2 + sd^2), c_in = 1 / sqrt(sigma^2 + sd^2). Training draws sigma from
  a lognormal (P_mean, P_std) instead of a uniform timestep, and EDM's loss weight
  (sigma^2 + sd^2) / (sigma sd)^2 = 1 / c_out^2 makes the loss a plain mean square on F. The network
  still sees the fractional timestep t(sigma) of the schedule's table, so every sampler, sigma
  table and the U-Net's embedding stay as they are.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from galgen.engine.schedules import alphas_cumprod as schedule_alphas_cumprod
from galgen.engine.schedules import sigmas_from_alphas_cumprod

LOSSES = ("l2", "l1")
PREDICTIONS = ("eps", "v", "edm")  # what the network outputs; see the module docstring


class Denoiser(nn.Module):
    """k-diffusion's discrete DDPM wrapper (Karras et al. 2022, Ho et al. 2020): eps, v or EDM preconditioning."""

    def __init__(self, net: nn.Module, *, schedule: str = "linear", timesteps: int = 1000, prediction: str = "eps",
                 sigma_data: float = 1.0, p_mean: float = -1.2, p_std: float = 1.2):
        super().__init__()
        if prediction not in PREDICTIONS:
            raise ValueError(f"unknown prediction {prediction!r}; choose from {', '.join(PREDICTIONS)}")
        if not sigma_data > 0:
            raise ValueError(f"sigma_data must be positive, got {sigma_data}")
        self.net = net
        self.schedule = schedule
        self.prediction = prediction
        self.sigma_data = float(sigma_data)  # edm: the data's RMS in [-1, 1] units
        self.p_mean, self.p_std = float(p_mean), float(p_std)  # edm: the training noise levels' lognormal
        abar = schedule_alphas_cumprod(schedule, timesteps)
        sigmas = sigmas_from_alphas_cumprod(abar)
        # tables are not weights: non-persistent buffers follow .to(device) but stay out of files
        self.register_buffer("alphas_cumprod", abar.float(), persistent=False)
        self.register_buffer("sigmas", sigmas.float(), persistent=False)
        self.register_buffer("log_sigmas", sigmas.log().float(), persistent=False)

    @property
    def timesteps(self) -> int:
        return len(self.sigmas)

    @property
    def sigma_min(self) -> torch.Tensor:
        return self.sigmas[0]

    @property
    def sigma_max(self) -> torch.Tensor:
        return self.sigmas[-1]

    def sigma_to_t(self, sigma: torch.Tensor) -> torch.Tensor:
        """Fractional timestep of each sigma: linear interpolation of log-sigma over the table."""
        log_sigma = torch.as_tensor(sigma, device=self.log_sigmas.device).float().clamp(min=1e-30).log()
        table = self.log_sigmas
        low = torch.searchsorted(table, log_sigma.reshape(-1).contiguous()).clamp(1, len(table) - 1) - 1
        lo, hi = table[low], table[low + 1]
        frac = ((log_sigma.reshape(-1) - lo) / (hi - lo)).clamp(0, 1)
        return (low + frac).reshape(log_sigma.shape)

    def t_to_sigma(self, t: torch.Tensor) -> torch.Tensor:
        """Sigma at fractional timestep t: linear interpolation of log-sigma between neighbours."""
        t = torch.as_tensor(t, device=self.log_sigmas.device).float().clamp(0, self.timesteps - 1)
        low = t.floor().long().clamp(max=self.timesteps - 2)
        frac = t - low
        return ((1 - frac) * self.log_sigmas[low] + frac * self.log_sigmas[low + 1]).exp()

    def forward(self, x: torch.Tensor, sigma: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        """Denoised estimate of x0 from x = x0 + sigma eps (variance-exploding form), float32.

        ``labels`` (B, K): a conditional network's normalised labels (a NaN row: unconditional).
        """
        sigma = self._per_image(sigma, x)
        if self.prediction == "edm":
            c_skip, c_out, c_in = self._edm_scalings(sigma)
            return c_skip * x.float() + c_out * self._net(x * c_in, self.sigma_to_t(sigma), labels).float()
        a = (1 + sigma**2).rsqrt()[:, None, None, None]  # sqrt(abar) at this sigma
        out = self._net(x * a, self.sigma_to_t(sigma), labels).float()
        if self.prediction == "v":  # x0 = a x_t - s v with x_t = a x and s = sqrt(1 - abar) = sigma a
            return a * a * x.float() - sigma[:, None, None, None] * a * out
        return x.float() - sigma[:, None, None, None] * out

    def loss(
        self,
        x0: torch.Tensor,
        *,
        t: torch.Tensor,
        noise: torch.Tensor,
        kind: str = "l2",
        z: torch.Tensor | None = None,
        labels: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """Ho et al. 2020 eq. 14 (Smith et al. 2022 eq. 11): mean |eps - eps_theta(x_t, t)|^p, p = 2 or 1.

        With v-prediction the target is v = sqrt(abar) eps - sqrt(1 - abar) x0 instead. With "edm"
        (Karras et al. 2022 eq. 8 with its weight) the noise level is sigma = exp(P_mean + P_std z)
        and the target F = (x0 - c_skip x) / c_out of x = x0 + sigma noise; ``t`` is not used.

        x0 (B, C, H, W) in [-1, 1], t integer timesteps (B,), noise standard normal like x0, z
        standard normal (B,), labels (B, K) normalised (NaN rows: unconditional) or None. The noisy
        input and the loss are float32 whatever the autocast dtype.
        """
        if self.prediction == "edm":
            if z is None:
                raise ValueError("the edm loss needs z, one standard normal value per image")
            sigma = (self.p_mean + self.p_std * z.float()).exp()
            x = x0.float() + sigma[:, None, None, None] * noise.float()
            c_skip, c_out, c_in = self._edm_scalings(sigma)
            predicted = self._net(x * c_in, self.sigma_to_t(sigma), labels).float()
            return _distance(predicted, (x0.float() - c_skip * x) / c_out, kind)
        abar = self.alphas_cumprod[t][:, None, None, None]
        x_t = abar.sqrt() * x0.float() + (1 - abar).sqrt() * noise.float()
        predicted = self._net(x_t, t.float(), labels).float()
        target = noise.float()
        if self.prediction == "v":
            target = abar.sqrt() * target - (1 - abar).sqrt() * x0.float()
        return _distance(predicted, target, kind)

    def _net(self, x: torch.Tensor, t: torch.Tensor, labels: torch.Tensor | None) -> torch.Tensor:
        """The bare network; labels go only to a network that takes them (older callers pass none)."""
        return self.net(x, t) if labels is None else self.net(x, t, labels)

    def _edm_scalings(self, sigma: torch.Tensor):
        """(c_skip, c_out, c_in) of Karras et al. 2022 table 1, shaped (B, 1, 1, 1)."""
        sigma = sigma.float()[:, None, None, None]
        total = sigma**2 + self.sigma_data**2
        return self.sigma_data**2 / total, sigma * self.sigma_data * total.rsqrt(), total.rsqrt()

    @staticmethod
    def _per_image(sigma, x: torch.Tensor) -> torch.Tensor:
        sigma = torch.as_tensor(sigma, device=x.device, dtype=torch.float32)
        return sigma.expand(x.shape[0]) if sigma.ndim == 0 else sigma.reshape(x.shape[0])


def _distance(predicted: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "l2":
        return F.mse_loss(predicted, target)
    if kind == "l1":
        return F.l1_loss(predicted, target)
    raise ValueError(f"unknown loss {kind!r}; choose from {', '.join(LOSSES)}")
