"""Operator edits that use what the models know about the goods: fit a zone's box to its
garment (the garment map, issue 12) and choose the category (issue 16). Qt-free; pure
functions ``doc -> new doc`` (the input is never modified), applied by
:class:`~studio_app.core.edits.Editor` like the other edits.

* :func:`fit_box` — the zone's box framed on its garment's own pixels with the pipeline's
  margin. The rule (zone -> classes, speckles dropped, margin) is
  :func:`ml.stages.garment_zones.fit_zone`, the same one the pipeline frames zones with; the
  operator's current box is the prior (parts of the garment far away from it are ignored).
* :func:`set_category` — the photo's category (a product photo) or an item's (a person's
  garment zone). The operator's choice is sure (confidence 1, ``by_hand``); it removes the
  "category is uncertain" review reason, and the photo no longer needs review when that was
  its only remark. The exporter reads the category from the document, so the next export's
  shop files (Shopify ``Type``/``Product Category``, Merchant ``google_product_category``/
  ``product_type``) follow the change.
"""
from __future__ import annotations

import numpy as np

from .edit_base import EditError, clip_box, clone, keypoints_of
from .result import ResultDocument


def fit_box(doc: ResultDocument, zone: str, garments: np.ndarray | None) -> list[float]:
    """The box (clipped to the photo) that frames ``zone``'s garment in ``garments``."""
    from ml.stages.garment_zones import ZONE_CLASSES, fit_zone
    it = doc.item(zone)
    if it is None:
        raise EditError(f"there is no {zone} item")
    if garments is None:
        raise EditError("this photo has no garment map (only person photos processed by this "
                        "version have one: process it again with Ctrl+R)")
    if zone not in ZONE_CLASSES:
        raise EditError(f"the {zone} zone has no garment of its own to fit to")
    fit = fit_zone(garments, zone, keypoints_of(doc), prior=tuple(it.box))
    if fit is None:
        raise EditError(f"the garment map has no {' or '.join(ZONE_CLASSES[zone])} pixels to fit "
                        f"the {zone} box to; drag the box by hand")
    return clip_box(fit[0], doc.source.width, doc.source.height)


def garment_box(doc: ResultDocument, zone: str, garments: np.ndarray | None,
                             prior) -> list[float] | None:
    """A re-created or re-framed zone's box from its garment (``prior``: the keypoint box, may be
    None); None when there is no garment map, the zone has no garment (``full``) or the garment
    is not in the map: the caller frames it from the keypoints then."""
    from ml.stages.garment_zones import fit_zone
    if garments is None:
        return None
    fit = fit_zone(garments, zone, keypoints_of(doc), prior=None if prior is None else tuple(prior))
    if fit is None:
        return None
    try:
        return clip_box(fit[0], doc.source.width, doc.source.height)
    except EditError:
        return None


def category_names() -> list[str]:
    """The categories an operator can choose: the classifier's classes, ``other``, and any a
    studio added to its mapping table (``studio_app.core.categories``), in that order."""
    from ml.category import CLASSES, OTHER
    from .categories import CategoryTableError, load_table
    names = list(CLASSES) + [OTHER]
    try:
        names += [n for n in load_table() if n not in names]
    except CategoryTableError:
        pass
    return names


def set_category(doc: ResultDocument, name: str, zone: str | None = None) -> ResultDocument:
    """The product photo's category (``zone`` None or ``product``), or a person item's."""
    from ml.category import UNCERTAIN_REASON
    name = str(name or "").strip()
    if name not in category_names():
        raise EditError(f"unknown category {name!r} (choose one of {', '.join(category_names())})")
    new = clone(doc)
    if doc.kind == "product" and zone in (None, "product"):
        new.category = {"name": name, "confidence": 1.0, "by_hand": True}
        for it in new.items:
            it.category = name
        before = len(new.warnings)
        new.warnings = [w for w in new.warnings if not w.startswith(UNCERTAIN_REASON)]
        if len(new.warnings) < before and not new.warnings:
            new.needs_review = False
        return new
    if zone is None:
        raise EditError("choose an item first: on a person photo each garment has its own category")
    it = new.item(zone)
    if it is None:
        raise EditError(f"there is no {zone} item")
    it.category = name
    return new
