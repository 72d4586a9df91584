"""How close galgen runs to this machine's limit: one table from one run.

Rows, all measured in this process one after the other (nothing else should run):
- the machine: the best FLOP/s of a 2048^3 matmul in fp32 and in bf16 (the peak a network could reach);
- sampling: images/s of galgen's tiny U-Net (64 px, 25 NFE, the model's default sampler) in exact mode
  (the CPU default: network calls of 8) and whole-batch, fp32 and bf16, beside diffusers' UNet2DModel
  of the same widths with its DPM-Solver++ scheduler; achieved GFLOP/s = images/s x NFE x forward FLOPs
  (torch.utils.flop_counter) and its fraction of the dtype's matmul peak;
- training: images/s of one step (forward, backward, AdamW) at batch 32, galgen tiny and a diffusers
  UNet2DModel of about its size, with FLOPs counted the same way;
- `galgen sample -n N -o DIR` with its defaults as a subprocess (FITS writing included): wall time and
  peak resident memory, for N = 100 and 1000 (memory must stay flat as N grows).
Threads: torch's default (all cores), as the commands use them.

    python benchmarks/limits.py [--images 16] [--sample-n 100 1000] [--skip-diffusers]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
import sample_speed  # noqa: E402  (sibling benchmark: galgen's and diffusers' sampling loops)
import train_speed  # noqa: E402  (sibling benchmark: training steps, FLOP counting, the matmul peak)

from galgen.engine.runtime import machine_line  # noqa: E402
from galgen.engine.train import new_network  # noqa: E402
from galgen.model import load_model  # noqa: E402

NFE = 25
TRAIN_BATCH = 32


def forward_flops(net: torch.nn.Module, size: int, *, diffusers: bool = False) -> float:
    """FLOPs of one forward pass of one 64 px image (under bf16 autocast when the weights are bf16)."""
    from torch.utils.flop_counter import FlopCounterMode

    x, t = torch.zeros(1, 3, size, size), torch.zeros(1)
    bf16 = any(p.dtype == torch.bfloat16 for p in net.parameters())  # a bf16 model's precast weights
    with FlopCounterMode(display=False) as counter, torch.no_grad(), \
            torch.autocast("cpu", dtype=torch.bfloat16, enabled=bf16):
        net(x, t * 999 if diffusers else t)
    return float(counter.get_total_flops())


def sample_command(count: int, out: Path) -> tuple[float, float, float]:
    """(wall seconds, peak RSS of the command's process, of its largest worker, MB) of `galgen sample -n count`.

    The command reports its own VmHWM at exit (rusage's maxrss would include the pages it shared
    with this large process between fork and exec) and its workers' largest maxrss (those do
    include the command's pages at their fork: an upper bound)."""
    report = out.with_suffix(".hwm")
    code = ("import atexit, resource, sys\n"
            "def peak():\n"
            "    own = int(next(l for l in open('/proc/self/status') if l.startswith('VmHWM')).split()[1])\n"
            "    workers = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss\n"
            f"    open({str(report)!r}, 'w').write(f'{{own}} {{workers}}')\n"
            "atexit.register(peak)\n"
            f"sys.argv = ['galgen', 'sample', '-n', '{count}', '-o', {str(out)!r}, '--json']\n"
            "from galgen.cli import main\nmain()\n")
    start = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    own, workers = (int(v) / 1024 for v in report.read_text().split())
    return seconds, own, workers


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=16, help="images per timed sampling run")
    parser.add_argument("--train-steps", type=int, default=4, help="timed training steps")
    parser.add_argument("--sample-n", type=int, nargs="*", default=[100, 1000], help="galgen sample -n runs")
    parser.add_argument("--skip-diffusers", action="store_true")
    args = parser.parse_args(argv)
    threads = torch.get_num_threads()
    peaks = {"fp32": train_speed.matmul_peak(torch.float32), "bf16": train_speed.matmul_peak(torch.bfloat16)}
    rows = []

    def row(kind, name, dtype, rate, flops_per_image):
        achieved = rate * flops_per_image
        rows.append((kind, name, dtype, rate, achieved / 1e9, 100 * achieved / peaks[dtype]))
        print(f"{kind:8} {name:48} {dtype:5} {rate:8.2f} img/s {achieved / 1e9:8.1f} GFLOP/s "
              f"{100 * achieved / peaks[dtype]:5.1f} % of peak", flush=True)

    print(machine_line())
    print(f"{threads} thread(s); matmul peak fp32 {peaks['fp32'] / 1e9:.0f} GFLOP/s, bf16 {peaks['bf16'] / 1e9:.0f}")
    with tempfile.TemporaryDirectory() as tmp:
        model_path = sample_speed.tiny_model_file(Path(tmp))
        model = load_model(model_path, device="cpu")
        sampler = model.default_sampler
        flops = forward_flops(model.module.net, 64) * NFE
        for dtype in ("fp32", "bf16"):
            for exact in (True, False):
                rate = sample_speed.time_galgen(model_path, sampler, images=args.images, nfe=NFE,
                                                bf16=dtype == "bf16", exact=exact)
                row("sample", f"galgen {sampler} {'exact (calls of 8)' if exact else 'whole batch'}", dtype, rate,
                    flops)
        if not args.skip_diffusers:
            unet = sample_speed.diffusers_unet(64)
            peer_flops = forward_flops(train_speed._Plain(unet), 64, diffusers=True) * NFE
            for dtype in ("fp32", "bf16"):
                rate = sample_speed.time_diffusers(unet, sampler, images=args.images, nfe=NFE, bf16=dtype == "bf16")
                row("sample", f"diffusers UNet2DModel + {sampler}", dtype, rate, peer_flops)

        torch.manual_seed(0)
        batch = (torch.rand(TRAIN_BATCH, 3, 64, 64) * 2 - 1, torch.randint(0, 1000, (TRAIN_BATCH,)).float(),
                 torch.randn(TRAIN_BATCH, 3, 64, 64))
        nets = {"galgen tiny": new_network(sample_speed.bundled_architecture())}
        if not args.skip_diffusers:
            nets["diffusers UNet2DModel"] = train_speed.diffusers_unet(64)
        for name, net in nets.items():
            per_image = train_speed.flops_per_image(net, batch)
            for dtype in ("fp32", "bf16"):
                rate = train_speed.images_per_second(net, batch, bf16=dtype == "bf16", steps=args.train_steps)
                row("train", f"{name}, batch {TRAIN_BATCH}", dtype, rate, per_image)

        for count in args.sample_n:
            seconds, own, workers = sample_command(count, Path(tmp) / f"mocks{count}")
            print(f"galgen sample -n {count} (bundled model, defaults, FITS writing): {seconds:.0f} s, "
                  f"{count / seconds:.2f} images/s, peak RSS {own:.0f} MB (command), {workers:.0f} MB (largest "
                  "worker)", flush=True)


if __name__ == "__main__":
    main()
