"""bench/quality.py scores the dev set's labels; the few that do not describe their file are
corrected in one listed place, and `--raw-labels` still scores them as shipped."""
from __future__ import annotations

import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench"
sys.path.insert(0, str(BENCH))
quality = pytest.importorskip("quality")
common = pytest.importorskip("common")

pytestmark = pytest.mark.skipif(not (common.DEV / "manifest.json").is_file(),
                                reason="the shared dev set is not beside this checkout")
BAG = "products/magento_luma/wb04-blue-0.jpg"


def test_a_corrected_label_is_applied_and_can_be_turned_off():
    fixed = {r["file"]: r for r in quality.photo_list(None)}
    raw = {r["file"]: r for r in quality.photo_list(None, raw_labels=True)}
    assert raw[BAG]["truth"] == "person" and raw[BAG]["colour_label"] == "Blue"
    assert fixed[BAG]["truth"] == "product" and fixed[BAG]["colour_label"] is None
    assert fixed[BAG]["group"] == "products/magento_luma/gear"
    others = set(fixed) - {BAG}
    assert all(fixed[f] == raw[f] for f in others)                # nothing else changes
    # an earlier run's record is re-scored the same way (swatch dropped, truth flipped)
    rec = {"file": BAG, "truth": "person", "kind": "product", "group": "products/magento_luma/on-model",
           "swatch": {"label": "blue", "got": "gray"}, "why": ""}
    new = quality._rescored(rec)
    assert new["truth"] == "product" and "swatch" not in new and new["group"].endswith("/gear")
    assert rec["truth"] == "person"                                # the input record is not changed
