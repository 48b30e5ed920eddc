"""One export image's bytes from its result folder: load the source photo (checked against the
document), render the item for the preset, encode it. The one home of this step: the exporter calls
it for each item it writes, and a cluster worker (``studio_app.cluster``) calls :func:`encode_items`
for a whole document, so both give the same bytes."""
from __future__ import annotations

from pathlib import Path

from studio_app.core.result import DocumentError, ResultDocument
from studio_app.core.result_folder import ResultFolder
from . import plan as plan_mod
from . import render
from .presets import Preset


class SourceError(Exception):
    """The source photo or the mask cannot be used for this document (one line, shown per result)."""


def load_source(folder: Path, doc: ResultDocument, preset: Preset):
    """(rgb, mask or None, EXIF to keep or None) of the document's source photo."""
    from ml.io import ImageLoadError, exif_for_export, load_image
    src = Path(doc.source.path)
    if not src.is_file():
        raise SourceError(f"the source photo {src} is not there any more (moved or deleted?)")
    try:
        img = load_image(src)
    except ImageLoadError as exc:
        raise SourceError(str(exc)) from exc
    if img.sha256 != doc.source.sha256:
        raise SourceError(f"the source photo {src.name} changed since it was processed; process it again")
    try:
        mask = ResultFolder(folder).read_mask(doc)
    except DocumentError as exc:
        raise SourceError(str(exc)) from exc
    if mask is not None:
        if mask.shape != img.rgb.shape[:2]:
            raise SourceError(f"the mask is {mask.shape[1]}x{mask.shape[0]} but the photo is "
                              f"{img.width}x{img.height}; process the photo again")
    exif = exif_for_export(img.exif) if preset.exif == "keep" else None
    return img.rgb, mask, exif


def encode_item(loaded, doc: ResultDocument, it, preset: Preset) -> tuple[bytes, dict]:
    """The file's bytes and what pre-flight needs to judge them (subject mask, enlargement)."""
    rgb, mask, exif = loaded
    if it.zone == "product" and mask is None:
        raise SourceError("the product has no mask file; process the photo again")
    r = render.render_full(rgb, mask, it.zone, it.box, preset, plan_mod.category_name(doc, it))
    data, _q = render.encode(r.image, preset.format, preset.quality, exif=exif, max_bytes=preset.max_file_bytes)
    return data, {"subject": r.subject, "upscale": r.upscale, "white": r.white}


def encode_items(folder: Path, doc: ResultDocument, indices: list[int], preset: Preset) -> list[tuple[bytes, dict]]:
    """:func:`encode_item` for ``doc.items[i]`` of each index, the source loaded once."""
    loaded = load_source(folder, doc, preset)
    return [encode_item(loaded, doc, doc.items[i], preset) for i in indices]
