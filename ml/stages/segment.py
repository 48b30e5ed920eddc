"""Product segmentation: U2-Net-p saliency at 320x320, then a full-resolution clean mask.

* :class:`ProductSegmenter` runs U2-Net-p (``ml.models.u2netp``, PyTorch, on the device
  given) with rembg's preprocessing and returns the fused map ``d0`` min-max normalised,
  **at 320x320** (the network's resolution, stretched to a square like the input was).
* :func:`refine_mask` turns any low-resolution probability map (this one, or the person
  mask from the pose model) into a binary mask at the photo's full size with clean edges:
  the map is upsampled to an intermediate resolution (long side 1024), sharpened onto the
  photo's own edges with a guided filter (He et al. 2010, box filters, grey guide), cleaned
  (largest component(s) kept, small holes filled), and only then bilinearly upsampled to
  full size and thresholded. Bilinear upsampling of a *soft* map gives sub-pixel smooth
  boundaries, so a 24-MP mask shows no 320-px (or 1024-px) staircase.
* :func:`mask_confidence` scores how decisive a map is, to flag photos for review.
"""
from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image

from ml.models.u2netp import INPUT_SIZE, build_u2netp

MEAN = np.array([0.485, 0.456, 0.406], np.float32)
STD = np.array([0.229, 0.224, 0.225], np.float32)
WORK_SIDE = 1024          # long side of the intermediate resolution used by refine_mask


def _as_rgb_uint8(rgb: np.ndarray) -> np.ndarray:
    a = np.asarray(rgb)
    if a.dtype != np.uint8:
        if np.issubdtype(a.dtype, np.floating) and a.size and float(np.nanmax(a)) <= 1.0:
            a = a * 255.0
        a = np.clip(np.nan_to_num(a), 0, 255).astype(np.uint8)
    if a.ndim == 2:
        a = np.repeat(a[:, :, None], 3, axis=2)
    elif a.ndim == 3 and a.shape[2] == 4:
        a = a[:, :, :3]
    elif a.ndim != 3 or a.shape[2] != 3:
        raise ValueError(f"expected an HxWx3 RGB image, got shape {a.shape}")
    return np.ascontiguousarray(a)


def preprocess(rgb: np.ndarray, size: int = INPUT_SIZE) -> np.ndarray:
    """rembg's input: Lanczos resize to size x size, divide by the image maximum, ImageNet
    mean/std, NCHW float32. Photos much larger than the input are first reduced with an area
    filter to 4x the input size (saves ~0.3 s on 24 MP; the Lanczos result is the same to
    within about one grey level)."""
    a = _as_rgb_uint8(rgb)
    h, w = a.shape[:2]
    if max(h, w) > 4 * size:
        s = 4 * size / max(h, w)
        a = cv2.resize(a, (max(size, round(w * s)), max(size, round(h * s))), interpolation=cv2.INTER_AREA)
    im = np.asarray(Image.fromarray(a).resize((size, size), Image.LANCZOS), dtype=np.float32)
    im = im / max(float(im.max()), 1.0)
    im = (im - MEAN) / STD
    return np.ascontiguousarray(im.transpose(2, 0, 1)[None], dtype=np.float32)


def _minmax(p: np.ndarray) -> np.ndarray:
    lo, hi = float(p.min()), float(p.max())
    if hi - lo < 1e-6:            # a constant map carries no information: nothing is salient
        return np.zeros_like(p, dtype=np.float32)
    return ((p - lo) / (hi - lo)).astype(np.float32)


class ProductSegmenter:
    """U2-Net-p salient-object segmentation for product photos.

    ``weights_dir``: folder holding ``u2netp.onnx`` (None = the default weights folder);
    the file is checked against the manifest's SHA-256 before it is loaded.
    ``device``: a torch device or "auto"/"cpu"/"cuda".
    """

    name = "u2netp"

    def __init__(self, weights_dir: str | Path | None = None, device: torch.device | str = "auto",
                 input_size: int = INPUT_SIZE, accelerated: bool = False):
        from ml import weights
        from ml.device import resolve_device

        self.device = device if isinstance(device, torch.device) else resolve_device(device)
        onnx_path = weights.verify("u2netp", weights_dir)
        if accelerated:     # the frozen fast path (ml.fastpath), from the graph cache when it has it
            from ml import fastpath
            from ml.models import u2netp
            self.model = fastpath.accelerate_cached(
                "u2netp", onnx_path, lambda: build_u2netp(onnx_path, self.device), self.device,
                (1, 3, int(input_size), int(input_size)), code=(u2netp,))
        else:
            self.model = build_u2netp(onnx_path, self.device)
        self.input_size = int(input_size)   # U2-Net-p is fully convolutional; 320 is its own size

    @torch.inference_mode()
    def predict_all(self, rgb: np.ndarray) -> list[np.ndarray]:
        """All seven raw sigmoid maps (d0 fused, d1..d6 side outputs), 320x320 float32."""
        x = torch.from_numpy(preprocess(rgb, self.input_size)).to(self.device)
        outs = self.model(x)
        return [o[0, 0].float().cpu().numpy() for o in outs]

    @torch.inference_mode()
    def predict(self, rgb: np.ndarray) -> np.ndarray:
        """Saliency probability, float32 in [0,1], **320x320** (not the input size): the
        fused map d0 min-max normalised as rembg does. Pass it to :func:`refine_mask` with
        the photo's size to get the full-resolution mask."""
        x = torch.from_numpy(preprocess(rgb, self.input_size)).to(self.device)
        d0 = self.model(x)[0][0, 0].float().cpu().numpy()
        return _minmax(d0)


# ---- refinement -----------------------------------------------------------------------

def _box(x: np.ndarray, r: int) -> np.ndarray:
    return cv2.boxFilter(x, -1, (2 * r + 1, 2 * r + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(guide: np.ndarray, src: np.ndarray, radius: int, eps: float) -> np.ndarray:
    """Grey-guide guided filter (He, Sun & Tang 2010) with O(1) box filters.

    ``guide`` and ``src`` are HxW float32 (guide in [0,1]). The output follows ``src``
    in flat regions of the guide and takes the guide's edges where it has them.
    """
    I = guide.astype(np.float32, copy=False)
    p = src.astype(np.float32, copy=False)
    mean_I = _box(I, radius)
    mean_p = _box(p, radius)
    cov_Ip = _box(I * p, radius) - mean_I * mean_p
    var_I = _box(I * I, radius) - mean_I * mean_I
    a = cov_Ip / (var_I + eps)
    b = mean_p - a * mean_I
    return _box(a, radius) * I + _box(b, radius)


def _work_size(w: int, h: int, side: int) -> tuple[int, int]:
    s = min(1.0, side / max(w, h))
    return max(1, round(w * s)), max(1, round(h * s))


def _guide_at(guide: np.ndarray, ww: int, wh: int) -> np.ndarray:
    """The guide as uint8 RGB at (ww, wh). A full-size photo is first reduced bilinearly to
    twice the working size (cheap, barely aliased at that ratio), then area-averaged: ~10x
    faster than one area resize of 24 MP."""
    g = _as_rgb_uint8(guide)
    h, w = g.shape[:2]
    if w > 3 * ww and h > 3 * wh:
        g = cv2.resize(g, (2 * ww, 2 * wh), interpolation=cv2.INTER_LINEAR)
    if g.shape[:2] != (wh, ww):
        interp = cv2.INTER_AREA if g.shape[1] > ww else cv2.INTER_LINEAR
        g = cv2.resize(g, (ww, wh), interpolation=interp)
    return g


def _grey(g: np.ndarray) -> np.ndarray:
    """uint8 RGB -> grey float32 in [0,1] (the guided filter's guide)."""
    return cv2.cvtColor(g, cv2.COLOR_RGB2GRAY).astype(np.float32) * (1.0 / 255.0)


def _clean(q: np.ndarray, threshold: float, keep_ratio: float, near_frac: float,
           max_hole_frac: float, hole_prob: float):
    """Clean the thresholded working map ``q >= threshold``.

    Components: the largest (8-connected) is kept, with any other at least ``keep_ratio``
    of its area (a pair of shoes) or lying within ``near_frac`` of the image diagonal of a
    kept one (a cord, a strap tip); distant specks go. Holes (background regions not
    touching the border) are filled when smaller than ``max_hole_frac`` of the object *and*
    the map is undecided there (mean probability >= ``hole_prob``), or when tiny (< 0.1 %
    of the object): a hole the network sees as clear background (between a lamp's arms, a
    bag's handle) stays open. Returns (kept, holes_to_fill) boolean maps.
    """
    binary = (q >= threshold).astype(np.uint8)
    n, lab, stats, _ = cv2.connectedComponentsWithStats(binary, connectivity=8)
    if n <= 1:
        return np.zeros(q.shape, bool), np.zeros(q.shape, bool)
    areas = stats[1:, cv2.CC_STAT_AREA]
    keep = np.zeros(n, bool)
    keep[1:] = areas >= keep_ratio * areas.max()
    hh, ww = q.shape
    reach = max(2, int(round(near_frac * np.hypot(ww, hh))))
    if n > 2 and not keep[1:].all():
        core = keep[lab].astype(np.uint8)
        k = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * reach + 1, 2 * reach + 1))
        near = cv2.dilate(core, k) > 0
        touched = np.unique(lab[near & (binary > 0)])
        keep[touched[touched > 0]] = True
    kept = keep[lab]
    kept_area = int(areas[keep[1:]].sum())

    nb, blab, bstats, _ = cv2.connectedComponentsWithStats((~kept).astype(np.uint8), connectivity=4)
    x, y = bstats[:, cv2.CC_STAT_LEFT], bstats[:, cv2.CC_STAT_TOP]
    bw, bh = bstats[:, cv2.CC_STAT_WIDTH], bstats[:, cv2.CC_STAT_HEIGHT]
    barea = bstats[:, cv2.CC_STAT_AREA]
    inner = (x > 0) & (y > 0) & (x + bw < ww) & (y + bh < hh)
    inner[0] = False                          # label 0 = the kept object itself
    sums = np.bincount(blab.ravel(), weights=q.ravel(), minlength=nb)
    mean_q = sums / np.maximum(barea, 1)
    fill = inner & (((barea <= max_hole_frac * kept_area) & (mean_q >= hole_prob))
                    | (barea <= 0.001 * kept_area))
    holes = fill[blab] & ~kept
    return kept, holes


BACKDROP_DE = 5.0        # a pixel this close (CIE76) to the backdrop's colour shows the backdrop
BACKDROP_EVEN = 0.9      # ... when this share of the frame's border is that close to it (a plain sweep)
RIM_DE = 30.0            # a hole is backdrop seen through the object when its rim contrasts this much
HOLE_MIN = 0.002         # ... and it holds at least this share of the object


def _lab8(rgb: np.ndarray) -> np.ndarray:
    """uint8 RGB -> OpenCV's 8-bit CIELAB (L * 255/100, a + 128, b + 128): fast, ~0.5 unit."""
    return cv2.cvtColor(rgb, cv2.COLOR_RGB2LAB)


def _de8(lab8: np.ndarray, ref: np.ndarray) -> np.ndarray:
    """CIE76 distance of 8-bit CIELAB pixels (N x 3) from ``ref`` (3,), in Lab units."""
    d = lab8.astype(np.float32) - np.asarray(ref, np.float32)
    d[..., 0] *= 100.0 / 255.0
    return np.sqrt((d * d).sum(axis=-1))


def backdrop_holes(guide: np.ndarray, obj: np.ndarray) -> np.ndarray:
    """Bool map (``obj``'s size) of the plain backdrop seen *through* the object ``obj``.

    Saliency networks fill an object's enclosed background (the inside of a skipping rope's
    loops, a mug's handle) when they see the object as one blob; the cut-out then carries
    patches of studio white, and so does the colour swatch. Where the frame's border is a
    plain backdrop (:data:`BACKDROP_EVEN` of it within :data:`BACKDROP_DE` of its median
    colour), a region inside the object of that very colour (each CIELAB axis within
    :data:`BACKDROP_DE`) is the backdrop when it is not a speck (>= :data:`HOLE_MIN` of the
    object), lies inside the object (3/4 of its rim in it: not the halo along the outline)
    and its rim is of a clearly different colour (median :data:`RIM_DE` away: rope, a dark
    handle). A white product's own highlights are rimmed by its light shading and stay; so
    does anything on a textured or uneven backdrop. ~5-10 ms on a 1024-px map.
    """
    obj = np.asarray(obj, bool)
    out = np.zeros(obj.shape, bool)
    n_obj = int(np.count_nonzero(obj))
    if n_obj == 0:
        return out
    hh, ww = obj.shape
    if np.ndim(guide) != 3 or np.shape(guide)[2] != 3:
        return out
    lab = _lab8(_guide_at(guide, ww, hh))
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    bg = np.median(border, axis=0)
    if np.mean(_de8(border, bg) < BACKDROP_DE) < BACKDROP_EVEN:
        return out
    half = np.array([BACKDROP_DE * 255.0 / 100.0, BACKDROP_DE, BACKDROP_DE])
    lo = np.clip(np.floor(bg - half), 0, 255)
    hi = np.clip(np.ceil(bg + half), 0, 255)
    cand = cv2.inRange(lab, lo, hi)
    cand[~obj] = 0
    n, comp, stats, _ = cv2.connectedComponentsWithStats(cand, connectivity=8)
    big = [i for i in range(1, n) if stats[i, cv2.CC_STAT_AREA] >= max(16, HOLE_MIN * n_obj)]
    k = np.ones((5, 5), np.uint8)
    for i in big:
        x, y, w, h = (int(v) for v in stats[i, :4])
        x0, y0, x1, y1 = max(0, x - 3), max(0, y - 3), min(ww, x + w + 3), min(hh, y + h + 3)
        part = comp[y0:y1, x0:x1] == i
        ring = (cv2.dilate(part.astype(np.uint8), k) > 0) & ~part
        rim = ring & obj[y0:y1, x0:x1]
        # enclosed by the object (not the halo along its outline) and rimmed by something else
        if (rim.any() and rim.sum() >= 0.75 * ring.sum()
                and float(np.median(_de8(lab[y0:y1, x0:x1][rim], bg))) > RIM_DE):
            out[y0:y1, x0:x1] |= part
    return out


def refine_mask(prob: np.ndarray, size: tuple[int, int], guide: np.ndarray | None = None, *,
                threshold: float = 0.5, work_side: int = WORK_SIDE, radius: int | None = None,
                eps: float = 1e-3, keep_ratio: float = 0.1, near_frac: float = 0.01,
                max_hole_frac: float = 0.05, hole_prob: float = 0.2,
                open_backdrop: bool = False) -> np.ndarray:
    """Binary mask (uint8 HxW, 0 or 255) at ``size`` = (width, height) from a probability map
    of any resolution (e.g. U2-Net-p's 320x320, stretched, or a 256x256 person mask).

    ``guide``: the photo (RGB, any resolution with the photo's aspect, e.g. the pipeline's
    1024-px working copy, or the full photo) used to snap edges onto the image's own edges;
    None = only smooth the map. ``radius`` (guided-filter window, intermediate pixels)
    defaults to about two map pixels; ``eps`` is the edge threshold (variance of the grey
    guide in [0,1]). Cleaning (see :func:`_clean`): components smaller than ``keep_ratio``
    of the largest and farther than ``near_frac`` of the diagonal from it are dropped; holes
    smaller than ``max_hole_frac`` of the object where the map is undecided (mean >=
    ``hole_prob``) are filled, clear holes (a bag handle, between a lamp's arms) stay open.
    ``open_backdrop`` (products on a plain backdrop, needs ``guide``): the backdrop seen
    through the object -- inside a loop of rope, a mug's handle -- is cut out even where the
    network filled it (:func:`backdrop_holes`).
    """
    W, H = int(size[0]), int(size[1])
    if W <= 0 or H <= 0:
        raise ValueError(f"bad mask size {size}")
    p = np.asarray(prob, dtype=np.float32)
    if p.ndim == 3:
        p = p[..., 0]
    if p.ndim != 2 or p.size == 0:
        raise ValueError(f"expected a 2-D probability map, got shape {np.shape(prob)}")
    p = np.clip(np.nan_to_num(p), 0.0, 1.0)

    ww, wh = _work_size(W, H, work_side)
    q = cv2.resize(p, (ww, wh), interpolation=cv2.INTER_LINEAR)
    if radius is None:
        radius = max(2, int(round(2.0 * max(ww / p.shape[1], wh / p.shape[0]))))
    small = None if guide is None else _guide_at(guide, ww, wh)      # reduced once, used twice
    if small is not None:
        q = guided_filter(_grey(small), q, radius, eps)
    else:
        q = _box(q, max(1, radius // 2))
    np.clip(q, 0.0, 1.0, out=q)

    kept, holes = _clean(q, threshold, keep_ratio, near_frac, max_hole_frac, hole_prob)
    if not kept.any():
        return np.zeros((H, W), np.uint8)
    q[(q >= threshold) & ~kept] = 0.0        # dropped specks
    q[holes] = 1.0                           # filled holes
    if open_backdrop and small is not None:
        q[backdrop_holes(small, q >= threshold)] = 0.0

    # 8-bit soft map: bilinear upsampling of uint8 is several times faster than float32 on
    # 24 MP, and 1/255 quantisation moves the boundary by far less than a pixel.
    q8 = (q * 255.0 + 0.5).astype(np.uint8)
    t8 = int(round(threshold * 255.0))
    if (ww, wh) != (W, H):
        q8 = cv2.resize(q8, (W, H), interpolation=cv2.INTER_LINEAR)
    _, mask = cv2.threshold(q8, t8 - 1, 255, cv2.THRESH_BINARY)
    return mask


def mask_confidence(prob: np.ndarray, lo: float = 0.1, hi: float = 0.9) -> float:
    """How decisive a probability map is, in [0,1]: 1 - (undecided pixels, lo < p < hi) /
    (undecided + confidently foreground pixels). Relating the undecided band to the object
    rather than to the whole frame keeps a small, sharp product from looking "certain" only
    because most of the frame is background, and makes a map with no confident object at all
    score 0. A crisp U2-Net-p map of a studio product scores > 0.9."""
    p = np.asarray(prob, dtype=np.float32)
    if p.size == 0:
        return 0.0
    undecided = int(np.count_nonzero((p > lo) & (p < hi)))
    fg = int(np.count_nonzero(p >= hi))
    if fg == 0:
        return 0.0
    return float(1.0 - undecided / (undecided + fg))
