"""The per-photo pipeline: loaded photo in, ``Analysis`` out. Nothing is written here.

    load (ml.io) -> working copy -> pose (person detector + 23 keypoints + person mask)
    -> classify person/product (a clear detection decides; otherwise the body evidence of
    ml.stages.classify: U2-Net-p's salient mask, skin, frame cuts, landmarks seeded from the
    mask and, where its vote can matter, the garment parser's person probability)
    -> person: garment parser (11-class map) + mask refine + garment-true zone crops
    | product: U2-Net-p mask -> product box
    -> swatches (a person zone's: its garment's pixels only) -> review flags

Models are loaded once, lazily, on the device chosen (CUDA when present, else CPU).
``Pipeline.analyze`` is what the CLI, the GUI worker thread and the tests all call.
"""
from __future__ import annotations

import os
import threading
import time
from pathlib import Path
from typing import Callable

import cv2
import numpy as np

from ml.device import resolve_device
from ml.types import Cancelled  # noqa: F401  (raised between stages; defined where no torch is imported)
from ml.fastpath import heavy_threads, torch_threads
from ml.stages import classify
from ml.types import Analysis, CropItem, Keypoints, LoadedImage, PoseResult

WORK_SIDE = 1024          # long side of the working copy the networks see
SWATCH_SAMPLES = 6000     # pixels per item given to k-means (sampled at random, fixed seed)
ProgressFn = Callable[[str, float], None]   # (stage name, fraction of this photo done)
CancelFn = Callable[[], bool]




def working_copy(rgb: np.ndarray, side: int = WORK_SIDE) -> tuple[np.ndarray, float]:
    """Downscale (never upscale) so the long side is ``side``. Returns (image, scale work/source)."""
    h, w = rgb.shape[:2]
    s = min(1.0, side / max(h, w))
    if s >= 1.0:
        return rgb, 1.0
    small = cv2.resize(rgb, (max(1, round(w * s)), max(1, round(h * s))), interpolation=cv2.INTER_AREA)
    return small, s


def scale_keypoints(kp: Keypoints, factor: float) -> Keypoints:
    return Keypoints(xy=(kp.xy * factor).astype(np.float32), score=kp.score.copy())


class Pipeline:
    def __init__(self, weights_dir: str | Path | None = None, device: str = "auto",
                 pose_engine: str = "blazepose", seg_engine: str = "u2netp"):
        from ml import weights as _weights
        self.weights_dir = Path(weights_dir) if weights_dir else _weights.weights_dir()
        self.device = resolve_device(device)
        self.pose_engine_name = pose_engine
        self.seg_engine_name = seg_engine
        self._pose = None
        self._seg = None
        self._category = None
        self._workers: dict = {}           # name -> its one worker thread (category, garments)
        self._garments = None              # GarmentParser, or the reason it is unavailable
        self._lock = threading.Lock()

    # ---- engines ------------------------------------------------------------------
    @property
    def pose(self):
        with self._lock:
            if self._pose is None:
                self._pose = _make_pose_engine(self.pose_engine_name, self.weights_dir, self.device)
            return self._pose

    @property
    def segmenter(self):
        with self._lock:
            if self._seg is None:
                self._seg = _make_seg_engine(self.seg_engine_name, self.weights_dir, self.device)
            return self._seg

    def _optional(self, attr: str, build: Callable[[], object], what: str):
        """A model the pipeline can do without: built once; when it cannot load (weights not
        fetched, a damaged file) the reason (a str) is kept instead and goes into each photo's
        warnings."""
        with self._lock:
            if getattr(self, attr) is None:
                try:
                    setattr(self, attr, build())
                except (RuntimeError, ValueError, OSError) as exc:   # WeightsError is a RuntimeError
                    setattr(self, attr, f"the {what} is not available: {exc}")
            return getattr(self, attr)

    @property
    def categoriser(self):
        """The product-category classifier, or the reason it cannot run (a str)."""
        def build():
            from ml.category.inference import CategoryClassifier
            return CategoryClassifier(self.weights_dir, self.device)
        return self._optional("_category", build, "product category")

    @property
    def garment_parser(self):
        """The garment parser, or the reason it cannot run (a str)."""
        def build():
            from ml.garments import GarmentParser
            return GarmentParser(self.weights_dir, str(self.device))
        return self._optional("_garments", build, "garment parser")

    def warm_up(self, optional: bool = True, prime: bool = False) -> None:
        """Load the models now and import the stages, so the first photo is not slower than
        the rest. ``optional=False``: only the two every photo needs (pose, segmentation; a
        missing one fails here); the category classifier and the garment parser then load on
        first use (the app's child process loads them once it is idle, so a first product photo
        does not wait for the parser it skips). The frozen graphs come from the on-disk cache
        (:mod:`ml.graph_cache`) after the first start.

        ``prime``: also run the product segmenter once on a blank image, on a thread of its own,
        while the pose models load: a graph's first call on the CPU creates its oneDNN kernels
        (U2-Net-p: ~0.43 s instead of ~0.25 s on one core), and the app's first photo -- sent the
        moment the models are ready -- would pay that. The caller goes on at once."""
        seg_failed = None
        try:
            seg = self.segmenter
        except Exception as exc:          # reported after the pose model's own failure, if any
            seg, seg_failed = None, exc
        if prime and seg is not None:
            from ml import background
            background.start(_prime, "prime-segmenter", seg)
        _ = self.pose
        if seg_failed is not None:
            raise seg_failed
        from ml.stages import crops, product, segment, swatch  # noqa: F401
        if optional:
            _ = self.categoriser
            if not isinstance(self.garment_parser, str):
                self.garment_parser.warm_up()

    @property
    def engines(self) -> dict[str, str]:
        return {"pose": self.pose_engine_name, "segmentation": self.seg_engine_name,
                "device": str(self.device)}

    # ---- routing ----------------------------------------------------------------------
    def _salient(self, work: np.ndarray, img, timings: dict) -> np.ndarray:
        """U2-Net-p's salient-object map (320x320) of the working copy. In fp32 it is the one
        heavy network: let the background full decode finish first, then give it every core
        (quiet 2-core machine: 0.2 s wait + 0.36 s beats 0.73 s on one core beside the decoder).
        In bf16 (a CPU with AMX, ``ml.fastpath.heavy_threads``) one core takes ~0.16 s: no wait."""
        import torch
        threads = heavy_threads() if self.device.type == "cpu" else torch.get_num_threads()
        if threads > torch.get_num_threads() and hasattr(img, "result") and not getattr(img, "done", True):
            t_wait = time.perf_counter()
            img.result()
            timings["wait_decode"] = time.perf_counter() - t_wait
        with torch_threads(threads):
            return self.segmenter.predict(work)

    def _route(self, work: np.ndarray, pose: PoseResult, parse: Callable[[], object], img,
               force_kind: str | None, timings: dict):
        """(decision, the pose to use, the salient map or None). A clear detection decides at
        once; otherwise the body evidence (ml.stages.classify) is gathered: the salient map,
        skin, frame cuts, the landmark model seeded from the salient mask, and -- when its vote
        can matter (``classify.parser_needed``) -- the garment parser's person probability and
        skin share (``parse()``: the parse, run on first call, or None without a parser)."""
        if force_kind is not None and force_kind not in ("person", "product"):
            raise ValueError(f"unknown kind {force_kind!r}")
        first = classify.decide_kind(pose)
        if force_kind is None and first.kind == "person" and first.confidence >= classify.CLEAR:
            return first, pose, None
        if force_kind == "person" and pose.person_score > 0:
            return classify.KindDecision("person", 1.0, "chosen by the operator"), pose, None
        salient = self._salient(work, img, timings)
        h, w = work.shape[:2]
        subject = cv2.resize(salient, (w, h), interpolation=cv2.INTER_LINEAR) >= 0.5
        seeded = None
        t = time.perf_counter()
        # a body without a detected face is one the frame cuts (below CUT_MIN it cannot count)
        if (pose.person_score <= 0 and hasattr(self.pose, "estimate_seeded")
                and (classify.frame_cut(subject) >= classify.CUT_MIN or force_kind == "person")):
            seeded = self.pose.estimate_seeded(work, subject)
        timings["seeded_pose"] = time.perf_counter() - t
        ev = classify.body_evidence(work, subject, pose, seeded)
        if force_kind is None and classify.parser_needed(pose, ev):
            got = parse()
            if got is not None:
                classify.add_parser(ev, got, work)
        decision = classify.decide_kind(pose, ev)
        if force_kind is not None:
            decision = classify.KindDecision(force_kind, 1.0, "chosen by the operator",
                                             seeded=force_kind == "person" and pose.person_score <= 0)
        decision.seeded = decision.seeded and seeded is not None
        if decision.seeded:
            pose = seeded
        elif decision.kind == "person" and pose.person_score <= 0:     # forced, nothing seeded
            pose = PoseResult(0.0, Keypoints.empty(), None)
        return decision, pose, salient

    # ---- the pipeline ---------------------------------------------------------------
    def analyze(self, img: LoadedImage, *, force_kind: str | None = None,
                progress: ProgressFn | None = None, cancel: CancelFn | None = None,
                work: LoadedImage | np.ndarray | None = None) -> Analysis:
        """Analyse one photo. ``work``: optionally a reduced-scale decode of the same photo
        (``ml.io.load_two_scale``); the networks run on it, colours are measured on it, and
        ``img`` may be an ``ml.io.PendingImage`` whose full-resolution pixels are still being
        decoded: only its size and warnings are used here, so the caller waits for the full
        decode only when it writes the outputs."""
        from ml.stages import segment as seg_stage
        from ml.stages import swatch as swatch_stage

        timings: dict[str, float] = {}
        warnings: list[str] = list(img.warnings)
        review: list[str] = []

        def step(name: str, frac: float) -> None:
            if cancel is not None and cancel():
                raise Cancelled()
            if progress is not None:
                progress(name, frac)

        t = time.perf_counter()
        W, H = img.width, img.height
        reduced = work is not None
        src = img.rgb if not reduced else (work.rgb if hasattr(work, "rgb") else np.asarray(work))
        work, _ = working_copy(src)
        # Colours are measured on the reduced decode when there is one (long side >= 1024 px;
        # k-means samples a few thousand pixels anyway), else on the photo itself.
        colour_src = src if reduced else None
        del src
        sx, sy = W / work.shape[1], H / work.shape[0]     # source px per working px
        timings["resize"] = time.perf_counter() - t

        step("pose", 0.1)
        t = time.perf_counter()
        pose: PoseResult = self.pose.estimate(work)
        timings["pose"] = time.perf_counter() - t
        if pose.n_persons > 1:
            warnings.append(f"{pose.n_persons} people in the photo: the largest is used")

        # The garment parser runs for a person photo (its garment map) and for routing when its
        # vote can matter; a clear product photo skips it (ml.stages.classify.parser_needed).
        # Where the detector found a person, the parse starts at once on its own thread, beside
        # the routing and the mask refinement (24-MP person on 2 cores: the photo then waits
        # ~20-30 ms for it instead of ~100); "garments" is that wait, "garments_own" its time.
        parsed: list = []
        parse_job = None
        if pose.person_score > 0 and force_kind != "product":
            parser = self.garment_parser
            if not isinstance(parser, str):
                parse_job = self._worker("garments").submit(_timed, parser.parse, work)

        def parse():
            if not parsed:
                step("garments", 0.5)
                t_parse = time.perf_counter()
                parser = self.garment_parser
                if isinstance(parser, str):
                    warnings.append(parser)
                    parsed.append(None)
                elif parse_job is not None:
                    got, timings["garments_own"] = parse_job.result()
                    parsed.append(got)
                else:
                    parsed.append(parser.parse(work))
                timings["garments"] = time.perf_counter() - t_parse
            return parsed[0]

        step("segmentation", 0.4)
        t = time.perf_counter()
        decision, pose, salient = self._route(work, pose, parse, img, force_kind, timings)
        kind, kind_conf = decision.kind, decision.confidence
        if force_kind is None and kind_conf < classify.SURE:
            review.append(f"unsure whether this is a person or a product photo ({decision.reason})")
        keypoints = _scale_xy(pose.keypoints, sx, sy) if kind == "person" else Keypoints.empty()
        items: list[CropItem] = []
        if kind == "person" and not decision.seeded and pose.mask_prob is not None and pose.person_score > 0:
            prob = pose.mask_prob
        else:
            prob = salient if salient is not None else self._salient(work, img, timings)
        mask = seg_stage.refine_mask(prob, (W, H), guide=work, open_backdrop=kind == "product")
        mask_conf = seg_stage.mask_confidence(prob)
        timings["segmentation"] = time.perf_counter() - t - timings.get("garments", 0.0)
        if mask_conf < 0.6:
            review.append(f"the mask is uncertain (confidence {mask_conf:.2f}); check its edges")
        coverage = float(np.count_nonzero(mask)) / mask.size
        if coverage < 0.002:
            review.append("almost nothing was segmented; is the subject in the frame?")
        # A product's category needs only the photo and its mask: it runs on a second thread
        # while the crops and swatch are computed, and is collected before the result returns.
        category_job = None
        if kind == "product" and coverage >= 0.002:
            category_job = self._worker("category").submit(self._categorise, work, mask)

        # collected only now: the parse ran on its thread while the mask was refined
        parse_result = parse() if decision.kind == "person" else (parsed[0] if parsed else None)
        step("crops", 0.6)
        t = time.perf_counter()
        garments = labels_w = None
        if kind == "person":
            from ml.stages.garment_zones import person_zones
            if parse_result is not None:
                from ml.garments.cleanup import resolve     # settle the parser's top/bottom/legwear doubts
                labels_w = resolve(parse_result.labels, work, pose.keypoints)
                garments = cv2.resize(labels_w, (W, H), interpolation=cv2.INTER_NEAREST)
            items, cut = person_zones(keypoints, (W, H), mask, garments)
            warnings.extend(cut)
            if not items:
                review.append("no garment zone could be framed from the keypoints")
            elif len([i for i in items if i.zone != "full"]) == 0:
                review.append("only the full look could be framed; garment zones are not visible")
        else:
            from ml.stages import product as product_stage
            if coverage >= 0.002:
                try:
                    box = product_stage.product_box(mask)
                    items = [CropItem(zone="product", box=tuple(float(v) for v in box))]
                except ValueError as exc:   # only specks (the product stage's own rule): no item
                    review.append(str(exc))
        timings["crops"] = time.perf_counter() - t

        if kind != "product":
            from ml.category import zone_category
            for it in items:
                it.category = zone_category(it.zone)

        step("swatch", 0.8)
        t = time.perf_counter()
        if colour_src is not None and colour_src.shape[:2] != (H, W):
            cs_h, cs_w = colour_src.shape[:2]
            fx, fy = cs_w / W, cs_h / H
            c_rgb = colour_src
            c_mask = cv2.resize(mask, (cs_w, cs_h), interpolation=cv2.INTER_NEAREST)
            c_garments = None if garments is None else cv2.resize(        # from the working-size map,
                labels_w, (cs_w, cs_h), interpolation=cv2.INTER_NEAREST)   # not the 24-MP copy
            c_kp = _scale_xy(keypoints, fx, fy)

            def c_box(b):
                return (b[0] * fx, b[1] * fy, b[2] * fx, b[3] * fy)
        else:
            c_rgb, c_mask, c_kp, c_garments = img.rgb, mask, keypoints, garments

            def c_box(b):
                return b
        for it in items:
            if it.zone == "full":
                continue
            box = c_box(it.box)
            if kind == "person" and c_garments is not None:
                from ml.stages.garment_zones import swatch_region
                region = swatch_stage.without_skin(c_rgb, swatch_region(c_garments, it.zone, box), box, c_kp)
            elif kind == "person":
                region = swatch_stage.garment_region(c_rgb, c_mask, box, c_kp, zone=it.zone)
            else:
                region = c_mask
            # a few thousand pixels pin a dominant colour down; k-means time grows with them
            it.swatch = swatch_stage.dominant_colour(c_rgb, region, box=box, max_samples=SWATCH_SAMPLES)
            if it.swatch is None:
                review.append(f"no colour could be measured for the {it.zone} zone")
            elif it.swatch.family == "mixed":
                review.append(f"the {it.zone} has no single dominant colour (mixed)")
        timings["swatch"] = time.perf_counter() - t
        category = None
        if category_job is not None:
            t = time.perf_counter()
            got, timings["category"], cat_warnings, cat_review = category_job.result()
            timings["category_wait"] = time.perf_counter() - t     # what it added to this photo
            if items:
                warnings.extend(cat_warnings)
                review.extend(cat_review)
                category = got
                if got is not None:
                    items[0].category = got[0]
        step("done", 1.0)

        warnings.extend(review)
        return Analysis(kind=kind, kind_confidence=float(kind_conf), mask=mask, keypoints=keypoints,
                        items=items, needs_review=bool(review), warnings=warnings,
                        engines=self.engines, timings=timings, category=category, garments=garments,
                        garment_person_prob=None if parse_result is None else parse_result.person_prob)

    def _worker(self, name: str):
        """The one worker thread called ``name`` (made on first use): the product category and
        the garment parse run beside the main line of a photo on theirs."""
        with self._lock:
            ex = self._workers.get(name)
            if ex is None:
                from concurrent.futures import ThreadPoolExecutor
                ex = self._workers[name] = ThreadPoolExecutor(1, thread_name_prefix=name)
            return ex

    def _categorise(self, work: np.ndarray, mask: np.ndarray) -> tuple:
        """(the product photo's (category, confidence) or None, seconds, warnings, review
        reasons), from ml.category. Runs on the category thread with one intra-op thread, so
        the crops and swatch keep the other core (quiet 2-core machine, 24-MP product: the
        classifier adds ~10 ms to the photo this way, ~30 ms when it ran after the swatch)."""
        t = time.perf_counter()
        clf = self.categoriser
        if isinstance(clf, str):
            return None, time.perf_counter() - t, [clf], []
        small = cv2.resize(mask, (work.shape[1], work.shape[0]), interpolation=cv2.INTER_NEAREST)
        with torch_threads(1):
            res = clf.classify(work, small)
        return (res.name, round(res.confidence, 4)), time.perf_counter() - t, list(res.warnings), list(res.review)


def _prime(segmenter) -> None:
    """One call of the segmenter's graph on a blank image (see ``Pipeline.warm_up``), and
    OpenCV's 8-bit CIELAB tables (built at their first use: ~65 ms)."""
    try:
        blank = np.full((64, 64, 3), 255, np.uint8)
        cv2.cvtColor(blank, cv2.COLOR_RGB2LAB)
        segmenter.predict(blank)
    except Exception:       # the first photo will say what is wrong with the model
        pass


def _timed(fn, *args):
    """(fn(*args), its seconds) -- for work done on a worker thread."""
    t = time.perf_counter()
    return fn(*args), time.perf_counter() - t


def _scale_xy(kp: Keypoints, sx: float, sy: float) -> Keypoints:
    xy = kp.xy.astype(np.float32, copy=True)
    xy[:, 0] *= sx
    xy[:, 1] *= sy
    return Keypoints(xy=xy, score=kp.score.copy())


def _make_pose_engine(name: str, weights_dir: Path, device):
    if name == "blazepose":
        from ml.stages.pose import PoseEstimator
        # traced: the two small networks run as one frozen graph each (~1.7x faster on a CPU)
        return PoseEstimator(weights_dir, device, trace=not os.environ.get("STUDIO_NO_FASTPATH"))
    path = _trained_checkpoint(name, weights_dir, "pose", "blazepose", "OpenPose")
    from ml.openpose.engine import OpenPoseEstimator
    return OpenPoseEstimator(path, device)


def _make_seg_engine(name: str, weights_dir: Path, device):
    if name == "u2netp":
        from ml.stages.segment import ProductSegmenter
        return ProductSegmenter(weights_dir, device, accelerated=True)
    path = _trained_checkpoint(name, weights_dir, "segmentation", "u2netp", "YOLACT")
    from ml.yolact.engine import YolactSegmenter
    return YolactSegmenter(path, device)


def _trained_checkpoint(name: str, weights_dir: Path, role: str, default: str, network: str) -> Path:
    """A trained checkpoint named by the operator: a path, or a file name inside weights/."""
    path = Path(name)
    if not path.is_absolute():
        path = weights_dir / name
    if path.suffix in (".pt", ".pth") and path.exists():
        return path
    raise ValueError(f"unknown {role} engine {name!r}: use '{default}' or a trained {network} "
                     "checkpoint in weights/")
