"""The catalog's values: a product (one SKU), an assignment (one item of one result -> a SKU, a
view, main or not), a product-panel row (a SKU with its completeness), and the rules for SKUs and
view names. Qt-free, no I/O."""
from __future__ import annotations

import re
from dataclasses import dataclass

ILLEGAL_SKU_CHARS = '/\\:*?"<>|'
MAX_SKU = 64
VIEW_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,31}$")
DEFAULT_VIEWS = ("front",)
ORIGINS = ("shot_list", "card", "file_name", "manual", "document")


class CatalogError(ValueError):
    """A catalog request that cannot be honoured; the message is for the operator."""


def sku_problem(sku: str) -> str | None:
    """Why ``sku`` cannot be a SKU (it becomes part of file names), or None when it is fine."""
    if not isinstance(sku, str) or not sku.strip():
        return "the SKU is empty"
    if sku != sku.strip():
        return f"SKU {sku!r} starts or ends with a space"
    bad = sorted({c for c in sku if c in ILLEGAL_SKU_CHARS or ord(c) < 32})
    if bad:
        shown = " ".join(repr(c) if ord(c) >= 32 else f"\\x{ord(c):02x}" for c in bad)
        return f"SKU {sku!r} contains characters not allowed in file names: {shown}"
    if sku.startswith(".") or sku.endswith("."):
        return f"SKU {sku!r} starts or ends with a dot"
    if len(sku) > MAX_SKU:
        return f"SKU {sku[:20]!r}... is longer than {MAX_SKU} characters"
    return None


def check_sku(sku: str) -> str:
    why = sku_problem(sku)
    if why:
        raise CatalogError(why)
    return sku


def normalise_view(view: str) -> str:
    v = str(view).strip().lower().replace(" ", "-")
    if not VIEW_RE.match(v):
        raise CatalogError(f"view {view!r} must be a short name of letters, digits, '-' or '_' "
                           "(e.g. front, back, side, detail, on-model)")
    return v


def parse_views(text: str | None) -> tuple[str, ...]:
    """``"front|back|detail"`` (also ``,`` ``;`` or spaces) -> ("front", "back", "detail")."""
    if not text or not str(text).strip():
        return ()
    parts = [p for p in re.split(r"[|,;/\s]+", str(text)) if p]
    out: list[str] = []
    for p in parts:
        v = normalise_view(p)
        if v not in out:
            out.append(v)
    return tuple(out)


@dataclass(frozen=True)
class Product:
    sku: str
    name: str = ""
    colour: str = ""
    category: str = ""
    views: tuple[str, ...] = ()          # expected views, in the order they are wanted
    origin: str = "manual"              # shot_list | card | file_name | manual | document

    def title(self) -> str:
        return self.name or self.sku


@dataclass(frozen=True)
class Assignment:
    folder: str                          # result folder key (see Catalog.key)
    zone: str
    sku: str | None
    view: str | None = None
    main: bool = False


@dataclass(slots=True)
class ProductStatus:
    """One row of the product panel: a SKU and how complete it is (treat as read-only)."""
    sku: str
    name: str
    colour: str
    category: str
    expected: tuple[str, ...]
    present: tuple[str, ...]
    images: int
    has_main: bool
    origin: str = "manual"

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(v for v in self.expected if v not in self.present)

    @property
    def complete(self) -> bool:
        return self.images > 0 and not self.missing

    @property
    def status(self) -> str:
        if not self.images:
            return "no images"
        return "complete" if not self.missing else "incomplete"

    def completeness(self) -> str:
        """The panel's line: ``"3/5 · missing back, detail"``, ``"5/5 · complete"``, ``"0/3 · no images"``
        (``"2 images"`` when the product expects no particular views); ``· no main`` when nothing
        is marked as the main image."""
        if not self.expected:
            text = f"{self.images} image{'s' if self.images != 1 else ''}" if self.images else "no images"
        else:
            have = len(self.expected) - len(self.missing)
            tail = ("no images" if not self.images else
                    "complete" if not self.missing else "missing " + ", ".join(self.missing))
            text = f"{have}/{len(self.expected)} · {tail}"
        return text + (" · no main" if self.images and not self.has_main else "")

