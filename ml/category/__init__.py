"""Product category: what kind of goods a product photo shows (issue 16).

Fourteen classes (the e-commerce taxonomy of ``train/products``; see :data:`CLASSES`) plus
``other`` when the classifier is not confident enough. The classifier is a small head on
frozen features of a pretrained, commercially licensed network:

* backbone (:mod:`ml.category.backbone`): the MobileNetV2 feature extractor of MediaPipe's
  Objectron OIDv4 SSD detector (Apache-2.0, trained on OpenImages), run through our own
  TFLite executor, plus the detector's 24 OpenImages class scores;
* input (:mod:`ml.category.views`): the product cut out with the U2-Net-p mask we already
  compute, on a white studio sweep (so a shoe on a bed and a shoe on white look alike);
* head (:mod:`ml.category.model`): a 2-layer MLP, shipped in git as ``weights/category_head.pt``;
* training (:mod:`ml.category.train`): ``studio-catalog train category``;
* inference (:mod:`ml.category.inference`): ``CategoryClassifier.classify``.
"""
from __future__ import annotations

CLASSES: tuple[str, ...] = (
    "footwear", "top", "bottom", "dress", "headwear", "bag", "accessory", "food_drink",
    "cosmetics", "kitchen_home", "electronics", "sports_gear", "books_media", "toys",
)
OTHER = "other"
# The review reason of an uncertain category starts with this (ml.category.inference writes it;
# an operator's choice of category removes it: studio_app.core.edits_apparel).
UNCERTAIN_REASON = "the product category is uncertain"

# Person photos: the garment zone (ml.types.ZONES / the apparel parser's classes) -> category.
ZONE_CATEGORY: dict[str, str] = {
    "top": "top", "bottom": "bottom", "dress": "dress", "shoes": "footwear",
    "footwear": "footwear", "head": "headwear", "headwear": "headwear", "bag": "bag",
}


def zone_category(zone: str) -> str | None:
    """The category of a person photo's crop zone, or None for zones that are no garment
    (``full``)."""
    return ZONE_CATEGORY.get(zone)
