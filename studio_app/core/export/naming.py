"""Output file names: a template with tokens, sanitised, unique and stable across re-exports.

Tokens: ``{sku}`` (the ``--sku`` given, else the shot name), ``{shot}`` (the source photo's
name without extension), ``{zone}`` (head/top/bottom/shoes/full/product), ``{view}`` (the
preset's view code for the zone, e.g. Amazon ``MAIN``/``PT01``; ``SWCH`` for a swatch),
``{colour}`` (hex without '#'), ``{family}`` (colour family), ``{preset}``, ``{ext}``.
A template without ``{ext}`` gets ``.<ext>`` appended.

Names are made safe for every file system and marketplace upload: ASCII letters, digits,
'.', '_' and '-' only (accents are folded: "Bluse_Grün" -> "Bluse_Grun"), no reserved
Windows names, at most 120 characters. Two items that would get the same name are told apart
deterministically with ``-2``, ``-3``... in a fixed order (result folder, then zone), and a name
once given to an item is recorded in the export's state file, so the same item gets the same
name on every re-export even when new photos join the batch.
"""
from __future__ import annotations

import re
import string
import unicodedata

TOKENS = ("sku", "shot", "zone", "view", "colour", "family", "preset", "ext")
MAX_LEN = 120
_RESERVED = {"con", "prn", "aux", "nul", *(f"com{i}" for i in range(1, 10)), *(f"lpt{i}" for i in range(1, 10))}


def validate_template(template: str) -> str | None:
    """None when usable, else the reason."""
    if "/" in template or "\\" in template:
        return "must be a file name, not a path (no '/' or '\\')"
    try:
        parts = list(string.Formatter().parse(template))
    except ValueError as exc:
        return f"has unbalanced braces ({exc})"
    used = set()
    for _lit, fld, spec, conv in parts:
        if fld is None:
            continue
        if fld not in TOKENS:
            return f"unknown token {{{fld}}} (tokens: {', '.join('{' + t + '}' for t in TOKENS)})"
        if spec or conv:
            return f"token {{{fld}}} takes no format spec"
        used.add(fld)
    if not used - {"ext", "preset"}:
        return "must contain at least one of {sku} {shot} {zone} {view} {colour} {family}"
    return None


def sanitise(text: str) -> str:
    """One name component: folded to ASCII, unsafe characters replaced by '_'."""
    t = unicodedata.normalize("NFKD", str(text))
    t = "".join(c for c in t if not unicodedata.combining(c))
    t = t.encode("ascii", "ignore").decode("ascii")
    return re.sub(r"[^A-Za-z0-9._-]+", "_", t)


def _tidy(name: str) -> str:
    name = re.sub(r"([._-])[._-]+", r"\1", name)      # empty tokens leave doubled separators
    return name.strip("._-")


def render(template: str, fields: dict[str, str]) -> str:
    """The file name for ``fields`` (all tokens; missing ones are empty)."""
    ext = sanitise(fields.get("ext", "")).strip("._-")
    vals = {t: sanitise(fields.get(t, "") or "") for t in TOKENS}
    vals["ext"] = ext
    if "{ext}" not in template:
        template = template + ".{ext}"
    name = template.format(**vals)
    stem, dot, e = name.rpartition(".") if name.endswith("." + ext) and ext else (name, "", "")
    stem = _tidy(stem) or "image"
    if stem.split(".")[0].lower() in _RESERVED:
        stem = "_" + stem
    limit = MAX_LEN - (len(ext) + 1 if dot else 0) - 4        # room for a "-NNN" suffix
    stem = stem[:limit].rstrip("._-") or "image"
    return f"{stem}.{ext}" if dot else stem


def with_suffix_number(name: str, n: int) -> str:
    stem, dot, ext = name.rpartition(".")
    if not dot:
        return f"{name}-{n}"
    return f"{stem}-{n}.{ext}"


class Namer:
    """Hands out unique names; ``records`` (key -> {"candidate", "name"}) persists in the state file.

    ``assign(key, candidate)``: an item seen before with the same candidate keeps its recorded
    name; otherwise it gets ``candidate`` or the first free ``candidate-N``. Names are compared
    case-insensitively (macOS and Windows file systems).
    """

    def __init__(self, records: dict[str, dict] | None = None):
        self.records: dict[str, dict] = {k: dict(v) for k, v in (records or {}).items()
                                         if isinstance(v, dict) and "name" in v and "candidate" in v}
        self._owner: dict[str, str] = {v["name"].lower(): k for k, v in self.records.items()}

    def assign(self, key: str, candidate: str) -> str:
        rec = self.records.get(key)
        if rec and rec["candidate"] == candidate:
            return rec["name"]
        if rec:                                          # template or colour changed: release the old name
            self._owner.pop(rec["name"].lower(), None)
        name, n = candidate, 1
        while self._owner.get(name.lower(), key) != key:
            n += 1
            name = with_suffix_number(candidate, n)
        self.records[key] = {"candidate": candidate, "name": name}
        self._owner[name.lower()] = key
        return name

    def release(self, key: str) -> None:
        """Forget ``key``'s name (its item is renamed): the name is free for another item."""
        rec = self.records.pop(key, None)
        if rec and self._owner.get(rec["name"].lower()) == key:
            del self._owner[rec["name"].lower()]

    def owner(self, name: str) -> str | None:
        return self._owner.get(name.lower())
