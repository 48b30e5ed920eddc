"""Garment parsing: an 11-class per-pixel garment map and an image-level person probability.

Public API (other stages and the app code against exactly this)::

    from ml.garments import CLASSES, GarmentParser, GarmentParse
    parse = GarmentParser(weights_dir=None, device="auto").parse(rgb)   # rgb: uint8 HxWx3
    parse.labels        # uint8 HxW at the input's size, values index CLASSES
    parse.person_prob   # float: the photo shows a person wearing goods
    parse.shares        # {class name: fraction of the image}

Modules: :mod:`.labels` (classes, CCP mapping), :mod:`.model` (network), :mod:`.augment`
(studio framings), :mod:`.data` (datasets), :mod:`.train` (training command),
:mod:`.infer` (the parser), :mod:`.evaluate` (IoU / person accuracy on a dev set).
"""
from .labels import CLASSES, CLASS_INDEX

__all__ = ["CLASSES", "CLASS_INDEX", "GarmentParser", "GarmentParse"]


def __getattr__(name):   # torch is imported only when the parser is used
    if name in ("GarmentParser", "GarmentParse"):
        from . import infer
        return getattr(infer, name)
    raise AttributeError(name)
