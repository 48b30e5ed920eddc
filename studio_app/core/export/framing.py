"""Per-category product framing in a preset: ``"category_framing"``.

    "category_framing": {
      "footwear": {"fill_x": 0.72, "fill_y": 0.85, "baseline": 0.72},
      "tall":     {"fill_x": 0.85, "fill_y": 0.92, "min_aspect": 2.0}
    }

Keys are product categories (``ml.category`` names, or a studio's own from
``resources/categories.json``) and the special ``tall``: any product whose box is at least
``min_aspect`` (default 2.0) times as high as wide (bottles, vases), whatever its category;
a category's own row wins over ``tall``.

* ``fill_x`` / ``fill_y`` (0.05..1): the most of the canvas width / height the product's box
  may take; the product is scaled to the tighter of the two (``fill`` sets both by default).
  Footwear: less width, so a side view keeps horizontal room; tall items: more height.
* ``baseline`` (0..1, optional): where the product's bottom edge sits, as a share of the
  canvas height from the top, so a row of shoes shares one floor line; absent = centred.
"""
from __future__ import annotations

from dataclasses import dataclass

TALL = "tall"
_KEYS = {"fill_x", "fill_y", "baseline", "min_aspect"}


@dataclass(frozen=True)
class Framing:
    fill_x: float
    fill_y: float
    baseline: float | None = None
    min_aspect: float = 2.0


def parse(raw, default_fill: float, err) -> tuple[tuple[str, Framing], ...]:
    """Validated ``category_framing`` (``err(field, message, value)`` builds the preset's
    error) as a tuple of (key, Framing), hashable for the frozen Preset."""
    if raw is None:
        return ()
    if not isinstance(raw, dict):
        raise err("category_framing", 'must map categories to framing, e.g. {"footwear": {"fill_x": 0.7}}', raw)
    out = []
    for key, row in raw.items():
        fld = f"category_framing.{key}"
        if not isinstance(row, dict):
            raise err(fld, "must be an object with fill_x, fill_y, baseline", row)
        extra = sorted(set(row) - _KEYS)
        if extra:
            raise err(f"{fld}.{extra[0]}", f"unknown field (known: {', '.join(sorted(_KEYS))})")
        vals = {}
        for name, lo, hi, default in (("fill_x", 0.05, 1.0, default_fill), ("fill_y", 0.05, 1.0, default_fill),
                                      ("baseline", 0.05, 1.0, None), ("min_aspect", 1.0, 20.0, 2.0)):
            v = row.get(name, default)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not lo <= v <= hi):
                raise err(f"{fld}.{name}", f"must be a number from {lo} to {hi}", v)
            vals[name] = None if v is None else float(v)
        out.append((str(key), Framing(**vals)))
    return tuple(out)


def choose(rules: tuple[tuple[str, Framing], ...], category: str | None,
           box_w: float, box_h: float) -> Framing | None:
    """The framing for a product of ``category`` whose box is ``box_w`` x ``box_h``."""
    table = dict(rules)
    if category and category in table:
        return table[category]
    tall = table.get(TALL)
    if tall is not None and box_w > 0 and box_h / box_w >= tall.min_aspect:
        return tall
    return None
