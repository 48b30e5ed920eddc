"""Help texts: the keyboard shortcuts and the About box (version, device, engines, models)."""
from __future__ import annotations

SHORTCUTS = [
    ("Next photo", "Right / J"),
    ("Previous photo", "Left / K"),
    ("Newest photo (clears the new-arrivals badge)", "End"),
    ("Show only photos to review", "F"),
    ("Approve (and go to the next photo)", "A"),
    ("Reject (and go to the next photo)", "R"),
    ("Zoom in / out", "+ / -"),
    ("Fit to window", "0"),
    ("Actual size (1:1)", "1"),
    ("Pan", "Space + drag, or middle-button drag"),
    ("Move / edit boxes and keypoints", "V"),
    ("Mask brush: add / erase", "B / E"),
    ("Brush smaller / larger", "[ / ]"),
    ("Eyedropper (swatch colour)", "I"),
    ("Show / hide the mask", "M"),
    ("Show / hide the garment map", "G"),
    ("Fit the selected box to its garment", "Shift+G"),
    ("Undo / Redo", "Ctrl+Z / Ctrl+Shift+Z"),
    ("Open photos / folder", "Ctrl+O / Ctrl+Shift+O"),
    ("Pause / resume the hot folder", "Ctrl+P"),
    ("Export approved results", "Ctrl+E"),
    ("Process the photo again (current engines)", "Ctrl+R"),
    ("Cancel the batch", "Esc"),
    ("Settings (engines)", "Ctrl+,"),
    ("Find a product (filter the SKUs)", "Ctrl+K"),
    ("Import a shot list / new product", "Ctrl+Shift+I / Ctrl+N"),
    ("Assign the selected photos / the selected item to the SKU", "S / Shift+S"),
    ("Set the item's view / make it the main image", "W / H"),
    ("Filmstrip: only the selected SKU's photos", "Shift+F"),
    ("This list", "F1"),
]


def shortcuts_html() -> str:
    rows = "".join(f"<tr><td style='padding:2px 16px 2px 0'>{a}</td><td><b>{k}</b></td></tr>" for a, k in SHORTCUTS)
    return f"<table>{rows}</table>"


def about_html(device_text: str, engines: tuple[str, str]) -> str:
    from studio_app import __version__
    lines = [f"<b>Studio Catalog {__version__}</b>",
             "Catalog-ready e-commerce images from studio photos "
             "(after Sorokina &amp; Ablameyko).",
             f"Models run on: {device_text}",
             "Engines: keypoints {0}, segmentation {1} (File › Settings…)".format(*engines),
             "", "<b>Models</b>"]
    try:
        from ml.weights import status
        for r in status():
            ok = "ok" if r.get("verified") else ("missing" if not r.get("present") else "hash mismatch")
            lines.append(f"{r['id']}: {r.get('licence', '?')} — {r.get('source', '')} ({ok})")
    except Exception as exc:
        lines.append(f"model list unavailable: {exc}")
    return "<br>".join(lines)
