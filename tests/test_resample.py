"""The one integer-factor area reduction (ml.resample) the crops, swatches, cut-outs and item
previews share."""
import numpy as np

from ml.resample import factor_to_fit, shrink


def test_shrink_is_the_block_mean_and_trims_the_far_edges():
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (103, 77, 3), dtype=np.uint8)
    small = shrink(img, 4)
    assert small.shape == (25, 19, 3)                     # 100 x 76 used, the rest trimmed
    blocks = img[:100, :76].reshape(25, 4, 19, 4, 3).astype(float).mean(axis=(1, 3))
    assert np.abs(small.astype(float) - blocks).max() <= 1.0 + 1e-9    # two roundings (2x, 2x)


def test_shrink_leaves_images_it_cannot_reduce():
    img = np.zeros((3, 50), np.uint8)
    assert shrink(img, 4) is img                          # a side shorter than the factor
    assert shrink(img, 1) is img


def test_shrink_by_a_factor_with_halvings_matches_one_block_mean():
    rng = np.random.default_rng(1)
    img = rng.integers(0, 256, (250, 190), dtype=np.uint8)
    for f in (2, 4, 6, 12):
        small = shrink(img, f)
        th, tw = 250 // f, 190 // f
        blocks = img[:th * f, :tw * f].reshape(th, f, tw, f).astype(float).mean(axis=(1, 3))
        assert small.shape == (th, tw)
        assert np.abs(small.astype(float) - blocks).max() <= 2.0   # a rounding per halving


def test_factor_to_fit_brings_the_long_side_under_the_limit_with_a_fast_factor():
    assert factor_to_fit(300, 200, 320) == 1
    assert factor_to_fit(5657, 4243, 320) == 24           # 18 needed; 24 = 3 x 8 is fast
    for h, w, side in ((5657, 4243, 320), (1000, 7, 64), (641, 640, 320), (640, 10, 320),
                       (5457, 4398, 1024), (8165, 6124, 320)):
        f = factor_to_fit(h, w, side)
        odd = f
        while odd % 2 == 0:
            odd //= 2
        assert odd in (1, 3)
        assert max(h, w) / f <= side and max(h, w) / f > side * 0.6
