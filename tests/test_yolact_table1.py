"""The Table-1 runner: equal-budget training of several YOLACT variants on real CCP photos, learning
curves, FPS and a report; an interrupted comparison continues without retraining what is done."""
from __future__ import annotations

import json
from pathlib import Path

import cv2
import pytest
import torch

from ml.training.plot import line_chart, smooth
from tests.conftest import SHARED_DATA

torch.set_num_threads(1)

CCP = SHARED_DATA / "train" / "ccp"
CCP_ANN = CCP / "ccp_instances_coco.json"


@pytest.fixture(scope="module")
def small_ccp(tmp_path_factory) -> Path:
    """A 2-photo COCO file cut from the real CCP annotations (person + shoes only)."""
    if not CCP_ANN.is_file():
        pytest.skip(f"CCP training data not found at {CCP}")
    d = json.loads(CCP_ANN.read_text())
    keep = {1, 4}
    sub = {"images": [i for i in d["images"] if i["id"] in keep],
           "annotations": [a for a in d["annotations"] if a["image_id"] in keep and a["category_id"] in (100, 39)],
           "categories": [c for c in d["categories"] if c["id"] in (100, 39)]}
    p = tmp_path_factory.mktemp("ccp") / "small.json"
    p.write_text(json.dumps(sub))
    return p


def test_line_chart_draws_each_series(tmp_path):
    out = line_chart({"a": ([0, 1, 2, 3], [4.0, 3.0, 2.5, 2.0]), "b": ([0, 1, 2, 3], [1.0, float("nan"), 1.5, 1.2])},
                     tmp_path / "c.png", title="t", xlabel="iteration", ylabel="loss")
    img = cv2.imread(str(out))
    assert img.shape == (500, 900, 3)
    # both palette colours appear (the lines were drawn), the background is white
    for bgr in [(178, 114, 0), (0, 94, 213)]:
        assert ((abs(img.astype(int) - bgr).sum(axis=2)) < 30).sum() > 50, bgr
    assert (img[250, 450] >= 0).all() and img[2, 2].tolist() == [255, 255, 255]
    assert smooth([1, 2, 3, float("nan"), 5], 2) == [1, 1.5, 2.5, 3, 5]
    with pytest.raises(ValueError):
        line_chart({"x": ([0], [float("nan")])}, tmp_path / "d.png")


def test_table1_runner_trains_evaluates_and_reports(small_ccp, tmp_path, capsys):
    from ml.yolact.config import get_config
    from ml.yolact.table1 import main
    ws = get_config("tiny").replace(name="tiny_ws", backbone={"ws": True, "norm": "gn"})
    ws_file = ws.save(tmp_path / "tiny_ws.json")
    argv = ["--configs", "tiny", str(ws_file), "--images", str(CCP), "--ann", str(small_ccp),
            "--val-images", str(CCP), "--val-ann", str(small_ccp), "--out", str(tmp_path / "runs"),
            "--report", str(tmp_path / "report"), "--iterations", "4", "--batch-size", "2",
            "--eval-every", "2", "--device", "cpu", "--workers", "0", "--fps-size", "192",
            "--fps-iters", "1", "--log-every", "1", "--lr", "5e-3"]
    assert main(argv) == 0
    report = (tmp_path / "report" / "README.md").read_text()
    assert "| tiny |" in report and "| tiny_ws |" in report
    assert "4 iterations × batch 2" in report and "seed 0" in report
    for name in ("loss.png", "ap50_mask.png", "ap50_box.png"):
        assert cv2.imread(str(tmp_path / "report" / name)) is not None, name
    res = json.loads((tmp_path / "report" / "results.json").read_text())
    for row in res["rows"]:
        assert [e["iteration"] for e in row["evals"]] == [2, 4]
        assert row["fps"] > 0 and row["params"] > 0
        assert 0.0 <= row["final"]["mask"]["AP50"] <= 1.0
    # both rows got the same budget and data
    cfgs = [json.loads((tmp_path / "runs" / n / "config.json").read_text()) for n in ("tiny", "tiny_ws")]
    assert cfgs[0]["category_ids"] == cfgs[1]["category_ids"] == [39, 100]
    assert cfgs[1]["backbone"]["ws"] and not cfgs[0]["backbone"]["ws"]
    # run again: nothing is retrained (the logs do not grow), the report is rebuilt
    before = [(tmp_path / "runs" / n / "log.jsonl").read_text() for n in ("tiny", "tiny_ws")]
    capsys.readouterr()
    assert main(argv) == 0
    assert "tiny/2" not in capsys.readouterr().out
    assert [(tmp_path / "runs" / n / "log.jsonl").read_text() for n in ("tiny", "tiny_ws")] == before


def test_table1_runner_reports_a_clear_error(tmp_path, capsys):
    from ml.yolact.table1 import main
    rc = main(["--images", str(tmp_path), "--ann", str(tmp_path / "missing.json"), "--val-images", str(tmp_path),
               "--val-ann", str(tmp_path / "missing.json"), "--out", str(tmp_path / "r"), "--iterations", "1",
               "--configs", "tiny", "--device", "cpu"])
    assert rc == 2 and "error:" in capsys.readouterr().err
