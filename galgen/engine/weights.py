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
import math
import os
import re
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
NETWORK_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}  # what a network's tensors may be stored as
DATA_DTYPES = {**NETWORK_DTYPES, "F64": "float64"}  # and a data.* table
# Calibration factors a model may carry (and `galgen calibrate` may write): 7.5 magnitudes either way. A factor
# beyond this is no flux calibration but a broken file (or mocks of another kind of data).
FACTOR_RANGE = (1e-3, 1e3)


class NonFiniteWeights(RuntimeFailure):
    """Tensors holding NaN or infinity: never written, never loaded."""


def save_weights(path, state_dict: Mapping, metadata: dict) -> Path:
    """Write tensors and JSON metadata as one safetensors file, atomically; NonFiniteWeights if any is NaN/inf.

    A failed write (a full disk) is one line naming ``path`` (`io.atomic.as_galgen_error`) and leaves nothing.
    """
    from safetensors import SafetensorError
    from safetensors.torch import save_file

    tensors = {name: t.detach().to("cpu").contiguous() for name, t in state_dict.items()}
    bad = first_non_finite(tensors)
    if bad is not None:
        raise NonFiniteWeights(f"{path}: not written: tensor {bad} holds NaN or infinite values")
    header = {"format": "pt", METADATA_KEY: json.dumps(metadata, allow_nan=False, sort_keys=True)}
    with atomic_output(path, parents=True) as tmp:
        try:
            save_file(tensors, str(tmp), metadata=header)
        except SafetensorError as exc:  # the Rust writer's I/O errors, e.g. a full disk
            raise _as_os_error(exc, tmp) from None  # atomic_output removes the temporary, names the output
    return Path(path)


def _as_os_error(exc: Exception, tmp) -> OSError:
    """safetensors' ``SafetensorError("... I/O error: No space left on device (os error 28)")`` as the OSError
    it stands for, so that atomic_output reports it as one line naming the output."""
    found = re.search(r"\(os error (\d+)\)", str(exc))
    if found is None:
        return OSError(str(exc).splitlines()[0] if str(exc) else "safetensors could not write the file")
    code = int(found.group(1))
    return OSError(code, os.strerror(code), str(tmp))


def data_tensors(tensors: Mapping | None) -> dict:
    """``tensors`` checked to be named ``data.*`` (what a model file may carry beside the network)."""
    tensors = dict(tensors or {})
    wrong = [name for name in tensors if not name.startswith(DATA_PREFIX)]
    if wrong:
        raise ValueError(f"extra tensor {wrong[0]!r} must be named {DATA_PREFIX}*")
    return tensors


def read_data_tensor(path, name: str):
    """The tensor ``data.<name>`` of a model file as a float64 numpy array, or None when it has none."""
    from safetensors import SafetensorError, safe_open

    key = DATA_PREFIX + name
    if data_entry(path, name) is None:
        return None
    if not _utf8(path):
        return load_tensors(path)[key].double().numpy()
    try:
        with safe_open(str(path), framework="pt") as handle:
            return handle.get_tensor(key).double().numpy()
    except (OSError, ValueError, RuntimeError, SafetensorError) as exc:
        raise InputError(f"corrupt weights file: {str(exc).splitlines()[0]}", path=path) from None


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
    except RecursionError:
        raise InputError("not a safetensors weights file (header nested too deeply)", path=path) from None
    if not isinstance(header, dict):
        raise InputError("not a safetensors weights file (header is not a table)", path=path)
    for name, entry in header.items():
        if name != "__metadata__" and not _is_tensor_entry(entry):
            raise InputError(f"not a safetensors weights file (bad tensor table entry {name!r})", path=path)
    end = max((int(v["data_offsets"][1]) for k, v in header.items() if k != "__metadata__"), default=0)
    if 8 + length + end > size:
        raise InputError(f"truncated weights file ({size} bytes, {8 + length + end} expected)", path=path)
    return header


def _is_tensor_entry(entry) -> bool:
    """Whether a tensor table entry is ``{"dtype": str, "shape": [int >= 0, ...], "data_offsets": [int, int]}``."""
    def counts(values):
        return isinstance(values, list) and all(type(v) is int and v >= 0 for v in values)

    return (isinstance(entry, dict) and isinstance(entry.get("dtype"), str) and counts(entry.get("shape"))
            and counts(entry.get("data_offsets")) and len(entry["data_offsets"]) == 2)


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
    except RecursionError:
        raise InputError("galgen metadata is nested too deeply (not written by galgen)", path=path) from None
    if not isinstance(doc, dict) or doc.get("kind") not in (MODEL_KIND, CHECKPOINT_KIND):
        raise InputError("galgen metadata names no known file kind", path=path)
    bad = _first_bad_number(doc)
    if bad is not None:
        raise InputError(f"galgen metadata {bad[0]} is {bad[1]!r}, not a finite number (galgen never writes one)",
                         path=path)
    return doc


def _first_bad_number(doc) -> tuple[str, object] | None:
    """(where, value) of the first NaN, infinity or integer beyond 64 bits in parsed JSON, in document order.

    galgen writes its metadata with ``allow_nan=False``; Python's json reads NaN and Infinity all the same,
    and such a value would reach the flux (or make `galgen info --json` print invalid JSON).
    """
    stack = [("", doc)]
    while stack:
        where, value = stack.pop()
        if isinstance(value, float) and not math.isfinite(value):
            return where, value
        if type(value) is int and abs(value) >= 2**63:
            return where, value
        if isinstance(value, dict):
            stack.extend((f"{where}.{k}" if where else str(k), v) for k, v in reversed(value.items()))
        elif isinstance(value, list):
            stack.extend((f"{where}[{i}]", v) for i, v in reversed(list(enumerate(value))))
    return None


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
    """(Denoiser, metadata) from a model file (or a checkpoint's EMA weights), in eval mode.

    Everything the network is built from is checked first, each InputError naming the file: the U-Net's
    settings (`UNetConfig.from_dict`), the schedule, steps and preconditioning (`_denoiser_arguments`), and the
    tensor table (names, shapes and float dtypes), before any weight is read.
    """
    from galgen.engine.denoiser import Denoiser
    from galgen.engine.unet import UNet, UNetConfig

    import torch

    meta = read_metadata(path)
    if "unet" not in meta:
        raise InputError("weights metadata is unusable: it has no U-Net settings", path=path)
    config = UNetConfig.from_dict(meta["unet"], path=path)
    settings = _denoiser_arguments(meta, path)
    try:
        with torch.device("meta"):  # shapes only, no memory: the file's table is checked before building
            expected = {k: tuple(v.shape) for k, v in UNet(config).state_dict().items()}
    except (TypeError, ValueError, RuntimeError) as exc:
        raise InputError(f"weights metadata is unusable: {exc}", path=path) from None
    _check_table(path, expected, prefix="ema." if meta["kind"] == CHECKPOINT_KIND else "")
    try:
        denoiser = Denoiser(UNet(config), **settings)
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


MAX_TIMESTEPS = 100_000  # a diffusion of more steps than this is no file galgen wrote (1000 is usual)


def _denoiser_arguments(meta: dict, path) -> dict:
    """The Denoiser's keyword arguments from weights metadata, each checked; InputError naming ``path``.

    ``schedule`` a known name, ``timesteps`` an integer in 2..MAX_TIMESTEPS, ``prediction`` a known output
    (older files, without it: eps) and EDM's ``sigma_data`` > 0, ``p_mean`` and ``p_std`` > 0 real numbers.
    """
    from galgen.engine.denoiser import PREDICTIONS
    from galgen.engine.schedules import SCHEDULES

    schedule, timesteps, prediction = meta.get("schedule"), meta.get("timesteps"), meta.get("prediction", "eps")
    if not isinstance(schedule, str) or schedule not in SCHEDULES:
        raise InputError(f"weights metadata names an unknown schedule {schedule!r} ({', '.join(SCHEDULES)})",
                         path=path)
    if type(timesteps) is not int or not 2 <= timesteps <= MAX_TIMESTEPS:
        raise InputError(f"weights metadata timesteps {timesteps!r} is not a whole number in 2..{MAX_TIMESTEPS}",
                         path=path)
    if not isinstance(prediction, str) or prediction not in PREDICTIONS:
        raise InputError(f"weights metadata names an unknown prediction {prediction!r} ({', '.join(PREDICTIONS)})",
                         path=path)
    settings = {"schedule": schedule, "timesteps": timesteps, "prediction": prediction}
    for key, positive in (("sigma_data", True), ("p_mean", False), ("p_std", True)):
        if key in meta:
            value = meta[key]
            if not is_real(value) or (positive and not value > 0):
                raise InputError(f"weights metadata {key} {value!r} is not a {'positive ' if positive else ''}"
                                 "real number", path=path)
            settings[key] = float(value)
    return settings


def is_real(value) -> bool:
    """Whether ``value`` (parsed JSON) is a finite int or float, not a bool or a string."""
    return type(value) in (int, float) and math.isfinite(value)


def _check_table(path, expected: dict, *, prefix: str) -> None:
    """InputError unless the file's tensor table holds exactly the ``expected`` names and shapes, in a float dtype
    (NETWORK_DTYPES: an int8 tensor would be cast into the network silently)."""
    header = read_header(path)
    entries = {k[len(prefix):]: v for k, v in header.items()
               if k != "__metadata__" and k.startswith(prefix) and not k.startswith(DATA_PREFIX)}
    table = {k: tuple(v["shape"]) for k, v in entries.items()}
    if table == expected:
        wrong = next((k for k, v in entries.items() if v["dtype"] not in NETWORK_DTYPES), None)
        if wrong is not None:
            raise InputError(f"weights tensor {prefix}{wrong} is stored as {entries[wrong]['dtype']}; the network "
                             f"takes {', '.join(NETWORK_DTYPES.values())} tensors", path=path)
        return
    missing = sorted(set(expected) - set(table))
    wrong = sorted(k for k in set(expected) & set(table) if expected[k] != table[k])
    what = (f"tensor {missing[0]} is missing" if missing else f"tensor {wrong[0]} has shape {table[wrong[0]]}, "
            f"the configuration needs {expected[wrong[0]]}" if wrong else
            f"unexpected tensor {sorted(set(table) - set(expected))[0]}")
    raise InputError(f"weights do not match their configuration: {what}", path=path)


def data_entry(path, name: str) -> dict | None:
    """The tensor table entry of ``data.<name>`` (checked to be a float dtype, DATA_DTYPES), or None when absent."""
    entry = read_header(path).get(DATA_PREFIX + name)
    if entry is not None and entry["dtype"] not in DATA_DTYPES:
        raise InputError(f"weights tensor {DATA_PREFIX}{name} is stored as {entry['dtype']}, not as "
                         f"{', '.join(DATA_DTYPES.values())}", path=path)
    return entry


def describe_weights(path) -> dict:
    """What `galgen info` says of a weights file: its path, kind, sha256 and metadata (no torch needed)."""
    metadata = read_metadata(path)  # checks the file before it is hashed (every number finite: valid JSON out)
    summary = {"path": str(path), "kind": "weights", "sha256": file_sha256(path), "metadata": metadata}
    labels = data_entry(path, "labels")
    if labels is not None:  # a conditional model's training label rows (what `sample -n` draws from)
        if len(labels["shape"]) != 2:
            raise InputError(f"weights tensor {DATA_PREFIX}labels has shape {tuple(labels['shape'])}, not "
                             "(rows, conditions)", path=path)
        summary["label_rows"] = labels["shape"][0]
    return summary


def write_calibration(src, dst, calibration: dict) -> Path:
    """Copy a model file with ``calibration`` set in its metadata, atomically (dst may equal src).

    A ``dst`` that is a symbolic link is written through: its target is replaced (atomically, beside the
    target) and the link stays, so the model it points to is the one calibrated. Returns the file written.
    """
    meta = read_metadata(src)
    if meta["kind"] != MODEL_KIND:
        raise InputError("calibration factors belong in a model file, not a checkpoint", path=src)
    tensors = load_tensors(src)
    target = Path(os.path.realpath(dst)) if Path(dst).is_symlink() else Path(dst)
    return save_weights(target, tensors, {**meta, "calibration": calibration})
