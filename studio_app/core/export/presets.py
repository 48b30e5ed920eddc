"""Marketplace presets: what an exported catalog image must look like, and which checks block it.

A preset is one JSON file. Built-in presets live in ``resources/presets/`` (repository root,
bundled with the app); a studio adds its own by dropping a JSON file into the user presets
folder (``platformdirs.user_config_dir("studio-catalog")/presets``, or the folder(s) named by
the environment variable ``STUDIO_CATALOG_PRESETS``, separated by the OS path separator).
A user preset with the name of a built-in one replaces it. ``"extends": "amazon"`` starts
from another preset and changes only the fields given. The format is documented in
``resources/presets/README.md``.

Every error names the file and the field, e.g.
``my_shop.json: field 'quality': must be an integer from 1 to 100 (got "high")``.
"""
from __future__ import annotations

import hashlib
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ml.types import ZONES

from . import framing

ENV_VAR = "STUDIO_CATALOG_PRESETS"
FORMATS = {"jpeg": "jpg", "png": "png", "webp": "webp"}
CHECKS = ("background", "fill", "min_long_side", "max_long_side", "min_size", "max_pixels",
          "aspect", "srgb", "file_size", "format", "colour", "upscale", "face_only")
SEVERITIES = ("block", "warn", "off")
FITS = ("pad", "crop")
DEFAULT_VIEWS = {"product": "main", "full": "main", "top": "alt1", "bottom": "alt2",
                 "shoes": "alt3", "head": "alt4", "dress": "alt5", "bag": "alt6"}
DEFAULT_CHECKS = {"background": "block", "fill": "block", "min_long_side": "block",
                  "max_long_side": "block", "min_size": "block", "max_pixels": "block",
                  "aspect": "block", "srgb": "block", "file_size": "block", "format": "block",
                  "colour": "off", "upscale": "warn", "face_only": "block"}
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


class PresetError(ValueError):
    """A preset that cannot be used; the message names the file and the field."""


@dataclass(frozen=True)
class Swatch:
    size: int = 50
    format: str = "png"
    view: str = "swatch"


@dataclass(frozen=True)
class Preset:
    name: str
    title: str
    width: int                      # the canvas (target) size, pixels
    height: int
    min_long_side: int
    max_long_side: int
    min_width: int
    min_height: int
    max_pixels: int                 # 0 = no limit
    upscale: bool                   # False: a small source gives a smaller canvas (never below the minimum)
    fit: str                        # person zones: "pad" (letterbox in background) or "crop" (to aspect)
    background: tuple[int, int, int]
    fill: float                     # product: fraction of the canvas the product's longest side fills
    min_fill: float                 # checked on the written pixels (0 = no check)
    format: str                     # jpeg | png | webp
    quality: int
    max_file_bytes: int             # 0 = no limit
    exif: str                       # strip | keep
    swatch: Swatch | None
    template: str
    views: dict[str, str]
    zones: tuple[str, ...]
    checks: dict[str, str]
    image_codes: dict | None = None  # per-product image codes: {"main", "other" ("PT{n:02d}"), "max_other"}
    shop_file: str | None = None    # shopify | google_merchant: the shop import file written beside the images
    on_model: str = "keep"          # person zones: "keep" the photo's backdrop, or put the person on "white"
    shadow: str = "off"             # packshots: "off", "natural" (the sweep's own), "soft" (synthetic): shadow.py
    source: str = ""                # the file it came from ("" for presets built in code)
    description: str = ""
    digest: str = field(default="", compare=False)   # content hash: a changed preset re-renders
    category_framing: tuple = ()    # ((category or "tall", framing.Framing), ...): see framing.py

    @property
    def aspect(self) -> float:
        return self.width / self.height

    @property
    def ext(self) -> str:
        return FORMATS[self.format]

    def severity(self, check: str) -> str:
        return self.checks.get(check, "off")

    def view(self, zone: str) -> str:
        return self.views.get(zone, DEFAULT_VIEWS.get(zone, zone))


# ---------------------------------------------------------------------------------------------
# Where presets come from

def builtin_dir() -> Path:
    """``resources/presets`` of the checkout or the bundle (see studio_app.core.paths)."""
    from studio_app.core.paths import presets_dir
    return presets_dir()


def user_dirs() -> list[Path]:
    """The user presets folder; ``STUDIO_CATALOG_PRESETS`` may name several, separated by os.pathsep."""
    env = os.environ.get(ENV_VAR)
    if env:
        return [Path(p).expanduser() for p in env.split(os.pathsep) if p.strip()]
    from studio_app.core.paths import user_presets_dir
    return [user_presets_dir()]


def _preset_files() -> dict[str, Path]:
    """name -> file; user folders override built-in ones (later folders win)."""
    files: dict[str, Path] = {}
    for d in [builtin_dir(), *user_dirs()]:
        if d.is_dir():
            for p in sorted(d.glob("*.json")):
                files[p.stem] = p
    return files


def available() -> dict[str, Path]:
    return dict(sorted(_preset_files().items()))


def list_presets() -> list[tuple[str, str, Path, str | None]]:
    """[(name, title, file, error or None)] for every preset found, broken ones included."""
    out = []
    for name, path in available().items():
        try:
            p = load_file(path)
            out.append((name, p.title, path, None))
        except PresetError as exc:
            out.append((name, "", path, str(exc)))
    return out


def load(name_or_path: str | os.PathLike) -> Preset:
    """A preset by name (built-in or user folder) or by the path of a JSON file."""
    s = str(name_or_path)
    p = Path(s).expanduser()
    if s.lower().endswith(".json") or os.sep in s or (os.altsep and os.altsep in s):
        if not p.is_file():
            raise PresetError(f"{s}: no such preset file")
        return load_file(p)
    files = _preset_files()
    if s not in files:
        names = ", ".join(sorted(files)) or "none found"
        raise PresetError(f"unknown preset {s!r} (available: {names})")
    return load_file(files[s])


def load_file(path: str | os.PathLike) -> Preset:
    path = Path(path)
    raw = _read_raw(path)
    merged = _resolve_extends(raw, path, seen=(path.resolve(),))
    return from_dict(merged, source=path, default_name=path.stem)


def _read_raw(path: Path) -> dict:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise PresetError(f"{path.name}: cannot read the preset file ({exc})") from exc
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise PresetError(f"{path.name}: not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno})") from exc
    if not isinstance(data, dict):
        raise PresetError(f"{path.name}: the preset must be a JSON object")
    return data


def _resolve_extends(raw: dict, path: Path, seen: tuple) -> dict:
    base_name = raw.get("extends")
    if base_name is None:
        return raw
    if not isinstance(base_name, str):
        raise PresetError(f"{path.name}: field 'extends': must be a preset name")
    files = _preset_files()
    base_path = files.get(base_name)
    if base_path is None or base_path.resolve() in seen:
        # a user preset may extend the built-in preset of the same name
        cand = builtin_dir() / f"{base_name}.json"
        base_path = cand if cand.is_file() and cand.resolve() not in seen else None
    if base_path is None:
        raise PresetError(f"{path.name}: field 'extends': no preset named {base_name!r} to extend")
    base = _resolve_extends(_read_raw(base_path), base_path, seen + (base_path.resolve(),))
    merged = dict(base)
    for k, v in raw.items():
        if k == "extends":
            continue
        if k in ("checks", "views", "canvas", "min_size") and isinstance(v, dict) and isinstance(base.get(k), dict):
            merged[k] = {**base[k], **v}
        elif k == "swatch" and isinstance(v, dict) and isinstance(base.get(k), dict):
            merged[k] = {**base[k], **v}
        else:
            merged[k] = v
    if "name" not in raw:
        merged.pop("name", None)    # a derived preset is named after its own file
    return merged


# ---------------------------------------------------------------------------------------------
# Validation

_FIELDS = {"name", "title", "description", "canvas", "min_long_side", "max_long_side", "min_size",
           "max_megapixels", "upscale", "fit", "background", "fill", "min_fill", "format", "quality",
           "max_file_mb", "exif", "swatch", "template", "views", "zones", "checks", "extends",
           "image_codes", "shop_file", "on_model", "category_framing", "shadow"}
SHOP_FILES = ("shopify", "google_merchant")


class _V:
    def __init__(self, fname: str):
        self.fname = fname

    def err(self, fld: str, msg: str, got: Any = None) -> PresetError:
        tail = f" (got {json.dumps(got)})" if got is not None else ""
        return PresetError(f"{self.fname}: field '{fld}': {msg}{tail}")

    def int_(self, d: dict, key: str, fld: str, default=None, lo=0, hi=100000) -> int:
        v = d.get(key, default)
        if v is None:
            raise self.err(fld, "is required")
        if isinstance(v, bool) or not isinstance(v, int) or not lo <= v <= hi:
            raise self.err(fld, f"must be an integer from {lo} to {hi}", v)
        return v

    def num(self, d: dict, key: str, fld: str, default=None, lo=0.0, hi=1e9) -> float:
        v = d.get(key, default)
        if v is None:
            raise self.err(fld, "is required")
        if isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi:
            raise self.err(fld, f"must be a number from {lo:g} to {hi:g}", v)
        return float(v)

    def choice(self, d: dict, key: str, fld: str, options, default=None) -> str:
        v = d.get(key, default)
        if v not in options:
            raise self.err(fld, f"must be one of {', '.join(options)}", v)
        return v


def from_dict(d: dict, *, source: str | os.PathLike = "", default_name: str = "") -> Preset:
    fname = Path(source).name if source else (d.get("name") or "preset")
    v = _V(str(fname))
    unknown = sorted(k for k in d if k not in _FIELDS and not str(k).startswith("_"))
    if unknown:
        raise v.err(unknown[0], "unknown field (a typo?); known fields: " + ", ".join(sorted(_FIELDS - {"extends"})))
    name = d.get("name", default_name)
    if not isinstance(name, str) or not NAME_RE.match(name):
        raise v.err("name", "must be letters, digits, '_', '-' or '.' (at most 64)", name)
    title = d.get("title", name)
    if not isinstance(title, str):
        raise v.err("title", "must be text", title)
    desc = d.get("description", "")
    if not isinstance(desc, str):
        raise v.err("description", "must be text", desc)

    canvas = d.get("canvas")
    if not isinstance(canvas, dict):
        raise v.err("canvas", 'is required: {"width": W, "height": H} in pixels', canvas)
    width = v.int_(canvas, "width", "canvas.width", lo=16, hi=30000)
    height = v.int_(canvas, "height", "canvas.height", lo=16, hi=30000)
    min_long = v.int_(d, "min_long_side", "min_long_side", default=0, lo=0, hi=30000)
    max_long = v.int_(d, "max_long_side", "max_long_side", default=30000, lo=16, hi=30000)
    ms = d.get("min_size", {})
    if not isinstance(ms, dict):
        raise v.err("min_size", 'must be {"width": W, "height": H}', ms)
    min_w = v.int_(ms, "width", "min_size.width", default=0, lo=0, hi=30000)
    min_h = v.int_(ms, "height", "min_size.height", default=0, lo=0, hi=30000)
    if max(width, height) > max_long:
        raise v.err("canvas", f"is larger than max_long_side {max_long}", canvas)
    if max(width, height) < min_long or width < min_w or height < min_h:
        raise v.err("canvas", "is smaller than the preset's own minimum size", canvas)
    max_mp = v.num(d, "max_megapixels", "max_megapixels", default=0, lo=0, hi=1000)
    upscale = d.get("upscale", False)
    if not isinstance(upscale, bool):
        raise v.err("upscale", "must be true or false", upscale)
    fit = v.choice(d, "fit", "fit", FITS, default="pad")
    bg = d.get("background", [255, 255, 255])
    if (not isinstance(bg, list) or len(bg) != 3
            or not all(isinstance(c, int) and not isinstance(c, bool) and 0 <= c <= 255 for c in bg)):
        raise v.err("background", "must be three integers 0..255, e.g. [255, 255, 255]", bg)
    fill = v.num(d, "fill", "fill", default=0.85, lo=0.05, hi=1.0)
    min_fill = v.num(d, "min_fill", "min_fill", default=0.0, lo=0.0, hi=1.0)
    if min_fill > fill:
        raise v.err("min_fill", f"is larger than 'fill' ({fill:g}): every product would fail", min_fill)
    fmt = d.get("format", "jpeg")
    fmt = {"jpg": "jpeg"}.get(fmt, fmt) if isinstance(fmt, str) else fmt
    fmt = v.choice({"format": fmt}, "format", "format", tuple(FORMATS))
    quality = v.int_(d, "quality", "quality", default=90, lo=1, hi=100)
    max_mb = v.num(d, "max_file_mb", "max_file_mb", default=0, lo=0, hi=10000)
    exif = v.choice(d, "exif", "exif", ("strip", "keep"), default="strip")

    sw_raw = d.get("swatch", {})
    if sw_raw is None or sw_raw is False:
        swatch = None
    elif isinstance(sw_raw, dict):
        extra = sorted(set(sw_raw) - {"size", "format", "view"})
        if extra:
            raise v.err(f"swatch.{extra[0]}", "unknown field (known: size, format, view)")
        sfmt = sw_raw.get("format", "png")
        sfmt = {"jpg": "jpeg"}.get(sfmt, sfmt) if isinstance(sfmt, str) else sfmt
        swatch = Swatch(size=v.int_(sw_raw, "size", "swatch.size", default=50, lo=4, hi=2000),
                        format=v.choice({"f": sfmt}, "f", "swatch.format", tuple(FORMATS)),
                        view=_view_str(v, sw_raw.get("view", "swatch"), "swatch.view"))
    else:
        raise v.err("swatch", 'must be an object {"size": 50, "format": "png", "view": "swatch"} or null', sw_raw)

    template = d.get("template", "{sku}_{zone}.{ext}")
    if not isinstance(template, str) or not template.strip():
        raise v.err("template", "must be a file-name template such as '{sku}_{zone}.{ext}'", template)
    from .naming import validate_template
    terr = validate_template(template)
    if terr:
        raise v.err("template", terr, template)

    views_raw = d.get("views", {})
    if not isinstance(views_raw, dict):
        raise v.err("views", "must map zones to view codes, e.g. {\"product\": \"MAIN\"}", views_raw)
    views = dict(DEFAULT_VIEWS)
    for z, code in views_raw.items():
        if z not in ZONES:
            raise v.err(f"views.{z}", f"unknown zone (zones: {', '.join(ZONES)})")
        views[z] = _view_str(v, code, f"views.{z}")

    zones_raw = d.get("zones", list(ZONES))
    if not isinstance(zones_raw, list) or not zones_raw:
        raise v.err("zones", f"must be a non-empty list of zones ({', '.join(ZONES)})", zones_raw)
    for z in zones_raw:
        if z not in ZONES:
            raise v.err("zones", f"unknown zone {z!r} (zones: {', '.join(ZONES)})", zones_raw)

    checks_raw = d.get("checks", {})
    if not isinstance(checks_raw, dict):
        raise v.err("checks", "must map check names to block / warn / off", checks_raw)
    checks = dict(DEFAULT_CHECKS)
    for k, sev in checks_raw.items():
        if k not in CHECKS:
            raise v.err(f"checks.{k}", f"unknown check (checks: {', '.join(CHECKS)})")
        if sev not in SEVERITIES:
            raise v.err(f"checks.{k}", "must be block, warn or off", sev)
        checks[k] = sev

    image_codes = _image_codes(v, d.get("image_codes"))
    on_model = v.choice(d, "on_model", "on_model", ("keep", "white"), default="keep")
    shadow = v.choice(d, "shadow", "shadow", ("off", "natural", "soft"), default="off")
    shop_file = d.get("shop_file")
    if shop_file is not None and shop_file not in SHOP_FILES:
        raise v.err("shop_file", f"must be one of {', '.join(SHOP_FILES)} or null", shop_file)

    canon = {k: d[k] for k in sorted(d) if k not in ("title", "description") and not str(k).startswith("_")}
    digest = hashlib.sha256(json.dumps(canon, sort_keys=True).encode()).hexdigest()[:16]
    return Preset(name=name, title=title, description=desc, width=width, height=height,
                  min_long_side=min_long, max_long_side=max_long, min_width=min_w, min_height=min_h,
                  max_pixels=int(max_mp * 1_000_000), upscale=upscale, fit=fit,
                  background=(bg[0], bg[1], bg[2]), fill=fill, min_fill=min_fill, format=fmt,
                  quality=quality, max_file_bytes=int(max_mb * 1024 * 1024), exif=exif, swatch=swatch,
                  template=template, views=views, zones=tuple(zones_raw), checks=checks,
                  image_codes=image_codes, shop_file=shop_file, on_model=on_model, shadow=shadow,
                  source=str(source), digest=digest,
                  category_framing=framing.parse(d.get("category_framing"), fill, v.err))


def _image_codes(v: _V, raw: Any) -> dict | None:
    """``{"main": "MAIN", "other": "PT{n:02d}", "max_other": 8}``: a product's images by position."""
    if raw is None:
        return None
    if not isinstance(raw, dict) or set(raw) - {"main", "other", "max_other"}:
        raise v.err("image_codes", 'must be {"main": "MAIN", "other": "PT{n:02d}", "max_other": 8}', raw)
    main = _view_str(v, raw.get("main", "MAIN"), "image_codes.main")
    other = raw.get("other", "PT{n:02d}")
    try:
        sample = other.format(n=1) if isinstance(other, str) else None
    except (KeyError, IndexError, ValueError):
        sample = None
    if sample is None or "{" in sample:
        raise v.err("image_codes.other", "must be a code with {n}, e.g. 'PT{n:02d}'", other)
    _view_str(v, sample, "image_codes.other")
    return {"main": main, "other": other,
            "max_other": v.int_(raw, "max_other", "image_codes.max_other", default=8, lo=0, hi=99)}


def _view_str(v: _V, code: Any, fld: str) -> str:
    if not isinstance(code, str) or not re.match(r"^[A-Za-z0-9_-]{1,32}$", code):
        raise v.err(fld, "must be a short code of letters, digits, '_' or '-'", code)
    return code
