"""Self-describing weights files: safetensors tensors plus galgen's JSON metadata (k-diffusion style).

A weights file alone is enough to sample: the network configuration, schedule, loss, normaliser,
pixel scale, training summary and (later) calibration factors travel as one JSON document under
the safetensors metadata key ``galgen``. Never pickle: nothing here can execute code from a file.

Two kinds of file share the format:
- ``galgen-model``: the network's (EMA) weights, what `galgen sample` reads;
- ``galgen-checkpoint``: model, EMA and AdamW moments with the step, for exact resume.
"""

from __future__ import annotations

import json
import struct
from pathlib import Path
from typing import Mapping

from galgen.io.atomic import atomic_output
from galgen.io.provenance import file_sha256
from galgen.errors import InputError, RuntimeFailure

METADATA_KEY = "galgen"
MODEL_KIND = "galgen-model"
CHECKPOINT_KIND = "galgen-checkpoint"
_MAX_HEADER = 100_000_000  # safetensors' own limit on the JSON header
DATA_PREFIX = "data."  # tensors about the training data (e.g. "data.labels"), not the network's weights


class NonFiniteWeights(RuntimeFailure):
    """Tensors holding NaN or infinity: never written, never loaded."""


def save_weights(path, state_dict: Mapping, metadata: dict) -> Path:
    """Write tensors and JSON metadata as one safetensors file, atomically; NonFiniteWeights if any is NaN/inf."""
    from safetensors.torch import save_file

    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}
    bad = first_non_finite(tensors)
    if bad is not None:
        raise NonFiniteWeights(f"{path}: not written: tensor {bad} holds NaN or infinite values")
    header = {"format": "pt", METADATA_KEY: json.dumps(metadata, allow_nan=False, sort_keys=True)}
    with atomic_output(path, parents=True) as tmp:
        save_file(tensors, str(tmp), metadata=header)
    return Path(path)


def data_tensors(tensors: Mapping | None) -> dict:
    """``tensors`` checked to be named ``data.*`` (what a model file may carry beside the network)."""
    tensors = dict(tensors or {})
    wrong = [name for name in tensors if not name.startswith(DATA_PREFIX)]
    if wrong:
        raise ValueError(f"extra tensor {wrong[0]!r} must be named {DATA_PREFIX}*")
    return tensors


def read_data_tensor(path, name: str):
    """The tensor ``data.<name>`` of a model file as a float64 numpy array, or None when it has none."""
    from safetensors import safe_open

    key = DATA_PREFIX + name
    if key not in read_header(path):
        return None
    if not _utf8(path):
        return load_tensors(path)[key].double().numpy()
    with safe_open(str(path), framework="pt") as handle:
        return handle.get_tensor(key).double().numpy()


def _utf8(path) -> bool:
    """Whether ``path`` is valid UTF-8: safetensors opens no other path (a name with a byte such as 0xff)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def read_header(path) -> dict:
    """The safetensors JSON header (tensor table + ``__metadata__``), checked against the file size."""
    from galgen.io.inputs import refuse_special_file

    path = Path(path)
    refuse_special_file(path)  # a FIFO would block for ever
    try:
        size = path.stat().st_size
        with open(path, "rb") as f:
            prefix = f.read(8)
            if len(prefix) < 8:
                raise InputError("not a safetensors weights file (too short)", path=path)
            (length,) = struct.unpack("<Q", prefix)
            if not 2 <= length <= min(_MAX_HEADER, size - 8):
                raise InputError("not a safetensors weights file (bad header length)", path=path)
            header = json.loads(f.read(length))
    except OSError as exc:
        raise InputError(f"cannot read weights file: {exc.strerror or exc}", path=path) from None
    except (UnicodeDecodeError, json.JSONDecodeError):
        raise InputError("not a safetensors weights file (header is not JSON)", path=path) from None
    if not isinstance(header, dict):
        raise InputError("not a safetensors weights file (header is not a table)", path=path)
    try:
        end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    except (TypeError, KeyError, IndexError, ValueError):
        raise InputError("not a safetensors weights file (bad tensor table)", path=path) from None
    if 8 + length + end > size:
        raise InputError(f"truncated weights file ({size} bytes, {8 + length + end} expected)", path=path)
    return header


def first_non_finite(tensors: Mapping) -> str | None:
    """The name of the first floating-point tensor holding NaN or infinity, else None."""
    import torch

    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not bool(torch.isfinite(tensor).all()):
            return name
    return None


def is_weights_file(path) -> bool:
    """Whether ``path`` is a safetensors file that galgen wrote (a model or a checkpoint)."""
    try:
        read_metadata(path)
    except InputError:
        return False
    return True


def read_metadata(path) -> dict:
    """galgen's JSON metadata of a weights or checkpoint file (no torch needed)."""
    meta = read_header(path).get("__metadata__")
    if not isinstance(meta, dict) or METADATA_KEY not in meta:
        raise InputError("safetensors file without galgen metadata (not a galgen model)", path=path)
    try:
        doc = json.loads(meta[METADATA_KEY])
    except (TypeError, json.JSONDecodeError):
        raise InputError("galgen metadata is not valid JSON", path=path) from None
    if not isinstance(doc, dict) or doc.get("kind") not in (MODEL_KIND, CHECKPOINT_KIND):
        raise InputError("galgen metadata names no known file kind", path=path)
    return doc


def load_tensors(path, *, device="cpu") -> dict:
    """All tensors of a validated file; InputError on any corruption."""
    from safetensors import SafetensorError
    from safetensors.torch import load, load_file

    read_header(path)
    try:
        if not _utf8(path):  # read here, handed over as bytes
            return {name: tensor.to(device) for name, tensor in load(Path(path).read_bytes()).items()}
        return load_file(str(path), device=str(device))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise InputError(f"corrupt weights file: {str(exc).splitlines()[0]}", path=path) from None


def load_denoiser(path, *, device="cpu"):
    """(Denoiser, metadata) from a model file (or a checkpoint's EMA weights), in eval mode."""
    from galgen.engine.denoiser import Denoiser
    from galgen.engine.unet import UNet, UNetConfig

    import torch

    meta = read_metadata(path)
    try:
        config = UNetConfig.from_dict(meta["unet"])
        with torch.device("meta"):  # shapes only, no memory: the file's table is checked before building
            expected = {k: tuple(v.shape) for k, v in UNet(config).state_dict().items()}
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"weights metadata is unusable: {exc}", path=path) from None
    _check_table(path, expected, prefix="ema." if meta["kind"] == CHECKPOINT_KIND else "")
    try:
        edm = {k: float(meta[k]) for k in ("sigma_data", "p_mean", "p_std") if k in meta}
        denoiser = Denoiser(UNet(config), schedule=meta["schedule"], timesteps=int(meta["timesteps"]),
                            prediction=meta.get("prediction", "eps"), **edm)  # older files: eps
    except (KeyError, TypeError, ValueError) as exc:
        raise InputError(f"weights metadata is unusable: {exc}", path=path) from None
    tensors = {k: v for k, v in load_tensors(path, device=device).items() if not k.startswith(DATA_PREFIX)}
    if meta["kind"] == CHECKPOINT_KIND:
        tensors = {k[len("ema."):]: v for k, v in tensors.items() if k.startswith("ema.")}
    bad = first_non_finite(tensors)
    if bad is not None:
        raise InputError(f"weights tensor {bad} holds NaN or infinite values (training diverged?)", path=path)
    try:
        denoiser.net.load_state_dict(tensors, strict=True)
    except RuntimeError as exc:
        raise InputError(f"weights do not match their configuration: {str(exc).splitlines()[0]}", path=path) from None
    return denoiser.to(device).eval().requires_grad_(False), meta


def _check_table(path, expected: dict, *, prefix: str) -> None:
    """InputError unless the file's tensor table holds exactly the ``expected`` names and shapes."""
    table = {k[len(prefix):]: tuple(v.get("shape", ())) for k, v in read_header(path).items()
             if k != "__metadata__" and k.startswith(prefix) and not k.startswith(DATA_PREFIX)}
    if table == expected:
        return
    missing = sorted(set(expected) - set(table))
    wrong = sorted(k for k in set(expected) & set(table) if expected[k] != table[k])
    what = (f"tensor {missing[0]} is missing" if missing else f"tensor {wrong[0]} has shape {table[wrong[0]]}, "
            f"the configuration needs {expected[wrong[0]]}" if wrong else
            f"unexpected tensor {sorted(set(table) - set(expected))[0]}")
    raise InputError(f"weights do not match their configuration: {what}", path=path)


def describe_weights(path) -> dict:
    """What `galgen info` says of a weights file: its path, kind, sha256 and metadata (no torch needed)."""
    metadata = read_metadata(path)  # checks the file before it is hashed
    summary = {"path": str(path), "kind": "weights", "sha256": file_sha256(path), "metadata": metadata}
    labels = read_header(path).get(DATA_PREFIX + "labels")
    if labels is not None:  # a conditional model's training label rows (what `sample -n` draws from)
        summary["label_rows"] = int(labels["shape"][0])
    return summary


def write_calibration(src, dst, calibration: dict) -> Path:
    """Copy a model file with ``calibration`` set in its metadata, atomically (dst may equal src)."""
    meta = read_metadata(src)
    if meta["kind"] != MODEL_KIND:
        raise InputError("calibration factors belong in a model file, not a checkpoint", path=src)
    tensors = load_tensors(src)
    return save_weights(dst, tensors, {**meta, "calibration": calibration})
