"""Provenance: what made an output file, recorded so that it can be made again.

`make_provenance` gathers the facts (galgen version, UTC time, command line, sha256 of
every input file, and run fields such as seed, sampler, NFE, model hash);
`provenance_to_header` writes them as 8-character FITS keywords plus a HISTORY line, and
`provenance_from_header` reads them back into the same dict. The keywords are listed in
docs/fits-format.md. This module never opens FITS files itself (that is cube.py's job);
it only fills and reads a header: an astropy Header, or the `galgen.io.cards.Cards` that
galgen's writer builds.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import textwrap
from datetime import datetime, timezone
from typing import Sequence
from urllib.parse import quote, unquote

from galgen import __version__
from galgen.errors import InputError

# field -> (FITS keyword, comment, stored as JSON). A field not listed here gets "GG" plus the
# first six letters of its name, and is recorded in GGEXTRA so that it reads back by name.
FIELDS: dict[str, tuple[str, str, bool]] = {
    "version": ("GALGEN", "galgen version that wrote this file", False),
    "date": ("GGDATE", "UTC time the file was made", False),
    "command": ("GGCMD", "command line that made this file", False),
    "model": ("GGMODELF", "model weights file", False),
    "model_sha256": ("GGMODEL", "sha256 of the model weights file", False),
    "seed": ("GGSEED", "random seed of the run", False),
    "index": ("GGINDEX", "image index in the run (noise from seed, index)", False),
    "sampler": ("GGSAMPLR", "reverse-diffusion sampler", False),
    "nfe": ("GGNFE", "network evaluations per image", False),
    "steps": ("GGSTEPS", "sampler steps", False),
    "eta": ("GGETA", "DDIM eta (0 = deterministic)", False),
    "schedule": ("GGSCHED", "noise schedule", False),
    "strength": ("GGSTRENG", "SDEdit strength (fraction of T noised)", False),
    "resample": ("GGRESAMP", "RePaint resampling count r", False),
    "jump": ("GGJUMP", "RePaint jump length j", False),
    "draws": ("GGDRAWS", "number of inpainting draws averaged", False),
    "device": ("GGDEVICE", "device the network ran on", False),
    "spacing": ("GGSPACIN", "how the sampler's noise levels were spaced", False),
    "bf16": ("GGBF16", "network ran under bf16 autocast", False),
    "precision": ("GGPREC", "network's precision and why it was chosen", False),
    "exact": ("GGEXACT", "fixed network batch, image i batch-invariant", False),
    "compiled": ("GGCOMPIL", "network ran under torch.compile", False),
    "calibrated": ("GGCALIBR", "model calibration factors applied to the flux", False),
    "simulator": ("GGSIMUL", "simulator that drew the image", False),
    "population": ("GGPOP", "simulated population's changed settings (JSON)", True),
    "count": ("GGCOUNT", "number of objects in the run", False),
    "normaliser": ("GGNORM", "normaliser parameters (JSON)", True),
    "calibration": ("GGCALIB", "flux calibration factors applied (JSON)", True),
    "input_units": ("GGINUNIT", "per band: the training data's unit (JSON)", True),
    "conditions": ("GGCOND", "labels the conditional model was asked for (JSON)", True),
    "guidance": ("GGGUIDE", "classifier-free guidance weight w", False),
    "autoguidance": ("GGAUTOG", "autoguidance weight w: D + w (D - D_guide)", False),
    "guide": ("GGGUIDEF", "weaker model weights file that autoguided", False),
    "guide_sha256": ("GGGUIDSH", "sha256 of the weaker model that autoguided", False),
    "pull": ("GGPULL", "inpainting gradient guidance weight", False),
    "catalog_id": ("GGCATID", "catalogue row this mock was drawn for", False),
    "outside": ("GGOUTSID", "labels requested beyond the training range", False),
}
_INPUT_COUNT = "GGNIN"
_MAX_LISTED_INPUTS = 999  # GGIN999 / GGSHA999 fill the 8-character keyword limit
_RESERVED = {keyword for keyword, _, _ in FIELDS.values()} | {"GGNIN", "GGINSHA", "GGEXTRA", "GGUTF8"}
_EXTRA = "GGEXTRA"  # JSON map of the keywords of fields outside FIELDS, so they read back
_ESCAPED = "GGUTF8"  # keywords whose string values are UTF-8 %-escaped (FITS cards hold printable ASCII)
_PLAIN_ASCII = "".join(chr(c) for c in range(32, 127) if chr(c) != "%")  # kept as they are when escaping


def make_provenance(*, command: str, inputs: Sequence = (), **fields) -> dict:
    """The provenance of an output: version, UTC time, command, input checksums and run fields.

    ``inputs`` are file paths; each is recorded as ``{"path", "sha256"}``. Fields that are
    None are left out. Field names must be identifiers (they become header keywords).
    """
    for name in fields:
        if not re.fullmatch(r"[a-z][a-z0-9_]*", name):
            raise ValueError(f"provenance field names are lower-case identifiers, got {name!r}")
    provenance = {
        "version": __version__,
        "date": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S"),
        "command": str(command),
        "inputs": [{"path": str(p), "sha256": _checksum(p)} for p in inputs],
    }
    provenance.update({k: _plain(v) for k, v in fields.items() if v is not None})
    return provenance


def _checksum(path) -> str:
    from galgen.io.provenance import file_sha256

    try:
        return file_sha256(path)
    except OSError as exc:
        raise InputError(f"cannot read input file to checksum it ({exc.strerror or exc})", path=path) from None


def provenance_to_header(provenance: dict, header) -> None:
    """Write a provenance dict into ``header`` (an astropy Header or `Cards`) as GG* keywords + HISTORY."""
    if provenance.get("date"):
        set_card(header, "DATE", provenance["date"], "UTC time this file was written")
    extra: dict[str, list] = {}  # keyword -> [field name, JSON-encoded] for fields outside FIELDS
    used: dict[str, str] = {}
    for name, value in provenance.items():
        if name == "inputs" or value is None:
            continue
        keyword, comment, as_json = _keyword_for(name, value, taken=used)
        used[keyword] = name
        if name not in FIELDS:
            extra[keyword] = [name, as_json]
        set_card(header, keyword, _card_value(value, as_json), comment)
    if extra:
        set_card(header, _EXTRA, json.dumps(extra, separators=(",", ":")), "keyword -> [field, JSON?]")
    if "inputs" in provenance:
        _inputs_to_header(provenance["inputs"], header)
    if provenance.get("command"):
        add_history(header, f"{provenance.get('date', '')} galgen {provenance.get('version', '')}: "
                            f"{provenance['command']}")


def fits_text(text: str, *, card_value: bool = False) -> tuple[str, bool]:
    """``text`` as a FITS card can hold it, and whether it had to be escaped.

    Printable ASCII stays as it is. Anything else (``mocks été``, a tab) is written with every
    character outside printable ASCII, and ``%`` itself, as %-escaped UTF-8 (RFC 3986), which
    `unescape_text` reverses exactly. A ``card_value`` longer than one card that holds a quote
    is escaped too (quotes become %27): astropy drops the start of a long string when one of its
    CONTINUE pieces begins with a quote, as shell-quoted paths in a command line do. A path holding
    bytes that are not UTF-8 (Python's surrogate escapes, ``os.fsdecode``) keeps those bytes (``\xff``
    is ``%FF``), so it reads back as the same path.
    """
    text = str(text)
    if text.isascii() and text.isprintable() and not (card_value and len(text) > 68 and "'" in text):
        return text, False
    safe = _PLAIN_ASCII.replace("'", "") if card_value else _PLAIN_ASCII
    return quote(text.encode("utf-8", "surrogateescape"), safe=safe), True


def unescape_text(text: str) -> str:
    """Inverse of the escaping in `fits_text` (bytes that are not UTF-8 come back as surrogate escapes)."""
    return unquote(text, errors="surrogateescape")


def add_history(header, text: str) -> None:
    """HISTORY cards for one line of text, wrapped at spaces (72 characters fit a card; escaped as `fits_text`)."""
    text, _ = fits_text(text)
    lines = textwrap.wrap(text, 72, subsequent_indent="  ", break_on_hyphens=False) or [""]
    for line in lines:
        header.add_history(line)


def provenance_from_header(header) -> dict:
    """Read back the dict `provenance_to_header` wrote (empty if the header has none)."""
    fields = {keyword: (name, as_json) for name, (keyword, _, as_json) in FIELDS.items()}
    extra = _json_or_none(header.get(_EXTRA))
    if isinstance(extra, dict):
        fields.update({k: (v[0], bool(v[1])) for k, v in extra.items() if isinstance(v, list) and len(v) == 2})
    escaped = set(str(header.get(_ESCAPED, "")).split())
    provenance: dict = {}
    for keyword, (name, as_json) in fields.items():
        if keyword in header:
            value = header[keyword]
            if keyword in escaped and isinstance(value, str):
                value = unescape_text(value)
            decoded = _json_or_none(value) if as_json else None
            provenance[name] = value if decoded is None else decoded  # a damaged JSON card stays text
    if _INPUT_COUNT in header:
        provenance["inputs"] = _inputs_from_header(header)
    return provenance


def _json_or_none(text):
    try:
        return json.loads(text) if isinstance(text, str) else None
    except json.JSONDecodeError:
        return None


def set_card(header, keyword: str, value, comment: str = "") -> None:
    """Set a card, dropping the comment where it would not fit on the card (no truncation warning)."""
    from galgen.io.cards import card_image

    if isinstance(value, str):
        value, escaped = fits_text(value, card_value=True)
        if escaped:
            listed = str(header.get(_ESCAPED, "")).split()
            if keyword not in listed:
                header[_ESCAPED] = (" ".join([*listed, keyword]), "values %-escaped UTF-8 (RFC 3986)")
    if not (isinstance(value, str) and len(value) > 68):  # long strings put the comment on CONTINUE
        room = 80 - len(card_image(keyword, value).rstrip()) - 3
        comment = comment if len(comment) <= room else ""
    header[keyword] = (value, comment)


def _keyword_for(name: str, value, *, taken) -> tuple[str, str, bool]:
    """Keyword, comment and JSON flag of a field; unlisted fields get GG + their name, hashed on collision."""
    if name in FIELDS:
        return FIELDS[name]
    letters = re.sub(r"[^A-Z0-9]", "", name.upper())
    for keyword in ("GG" + letters[:6], "GG" + letters[:4] + hashlib.sha1(name.encode()).hexdigest()[:2].upper()):
        if keyword not in taken and keyword not in _RESERVED and not re.fullmatch(r"GG(IN|SHA)\d+", keyword):
            as_json = isinstance(value, (dict, list, tuple))
            return keyword, f"galgen field {name}", as_json
    raise ValueError(f"provenance field {name!r} has no free header keyword (rename it)")


def _card_value(value, as_json: bool):
    if as_json:
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)  # FITS cards cannot hold NaN or infinity
    return value


def _plain(value):
    """numpy scalars -> Python scalars, paths -> str, tuples -> lists (JSON- and FITS-safe)."""
    if hasattr(value, "item") and not isinstance(value, (str, bytes)) and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "__fspath__"):
        return str(value)
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    if isinstance(value, list):
        return [_plain(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    return value


def _inputs_to_header(inputs: list[dict], header) -> None:
    set_card(header, _INPUT_COUNT, len(inputs), "number of input files")
    if len(inputs) > _MAX_LISTED_INPUTS:
        digest = hashlib.sha256("".join(sorted(i["sha256"] for i in inputs)).encode()).hexdigest()
        set_card(header, "GGINSHA", digest, "sha256 over the sorted input sha256 list")
        return
    for n, item in enumerate(inputs, start=1):
        set_card(header, f"GGIN{n}", str(item["path"]), f"input file {n}")
        set_card(header, f"GGSHA{n}", item["sha256"], f"sha256 of input file {n}")


def _inputs_from_header(header) -> list[dict]:
    count = int(header[_INPUT_COUNT])
    if count > _MAX_LISTED_INPUTS:
        return [{"count": count, "sha256_of_sha256s": header.get("GGINSHA")}]
    escaped = set(str(header.get(_ESCAPED, "")).split())

    def path(n):
        value = header.get(f"GGIN{n}")
        return unescape_text(value) if f"GGIN{n}" in escaped and isinstance(value, str) else value

    return [{"path": path(n), "sha256": header.get(f"GGSHA{n}")} for n in range(1, count + 1)]


def file_sha256(path) -> str:
    """Hex sha256 of a file, read in 1 MiB chunks: what output headers cite for their inputs and their model."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()
