"""alexnet serve for every architecture, with a neighbour index and a run folder's curves."""
from __future__ import annotations

import csv

import pytest
from fastapi.testclient import TestClient

from alexnet.checkpoint import Checkpoint
from alexnet.features import save_features
from alexnet.model import build_model
from alexnet.serve import load_served
from alexnet.serve.app import create_app
from alexnet.serve.model import ServedModel
from test_serve_common import CLASSES, PREP, image_bytes, picture, tiny_checkpoint


def inspect(app, kind="jpeg"):
    data, media = image_bytes(kind)
    with TestClient(app) as c:
        r = c.post("/v1/inspect", content=data, headers={"content-type": media})
        assert r.status_code == 200, r.text
        p = c.post("/v1/predict?crops=10", content=data, headers={"content-type": media})
        assert p.status_code == 200, p.text
        assert c.get("/v1/figures/filters.png").status_code == 200
        return r.json(), c.get("/v1/model").json()


@pytest.mark.parametrize("arch, switches, convs, fcs, towers", [
    ("paper-1tower", {}, 5, ["fc6", "fc7", "fc8"], 1),
    ("paper", {"in_channels": 1}, 5, ["fc6", "fc7", "fc8"], 2),
    ("cifar", {"input_size": 32, "fc_size": None}, 3, ["fc10"], 1),
])
def test_every_architecture_is_served(tmp_path, arch, switches, convs, fcs, towers):
    ck = tiny_checkpoint(tmp_path / "m.pt", arch, **switches)
    served, _ = load_served(str(ck))
    if arch == "cifar":   # 32 px network: decode to 36, crop 32
        served.prep.update(resize=36, crop=32)
    res, card = inspect(create_app(served), kind="rgba")
    assert len(res["layers"]) == convs and [f["name"] for f in res["fc"]] == fcs
    assert all(len(layer["towers"]) == towers for layer in res["layers"])
    assert res["fc"][-1]["units"][0]["label"] in CLASSES
    assert card["architecture"] == arch


def test_owt_built_in_memory_is_served():
    # torchvision's layout has a fixed 9216 x 4096 fc6: built here rather than saved, to keep the test small
    m = build_model("owt", num_classes=len(CLASSES), input_size=64).eval()
    record = Checkpoint(model_config=m.config, state_dict=m.state_dict(), classes=CLASSES, preprocessing=dict(PREP))
    served = ServedModel(m, record, "owt-in-memory", dict(PREP), CLASSES)
    res, card = inspect(create_app(served))
    assert res["layers"][0]["shape"][0] == 64 and card["switches"]["lrn"] is False


def test_neighbours_from_an_index_and_curves_from_a_run_folder(tmp_path):
    run = tmp_path / "run"
    run.mkdir()
    tiny_checkpoint(run / "best.pt")
    with open(run / "metrics.csv", "w", newline="") as f:
        w = csv.DictWriter(f, ["epoch", "lr", "train_loss", "val_loss", "train_top1_error", "val_top1_error"])
        w.writeheader()
        for e in range(1, 4):
            w.writerow({"epoch": e, "lr": 0.01, "train_loss": 1.6 - 0.2 * e, "val_loss": 1.7 - 0.2 * e,
                        "train_top1_error": 0.8 - 0.1 * e, "val_top1_error": 0.85 - 0.1 * e})
    imgs = tmp_path / "train"
    imgs.mkdir()
    for i in range(6):
        picture(i).save(imgs / f"img{i}.jpg" if i else imgs / "query.png")
    save_features(str(run), [str(imgs)], ["fc7"], tmp_path / "index.npz", progress=False)
    served, index = load_served(checkpoint=str(run), index=str(tmp_path / "index.npz"))
    app = create_app(served, index=index)
    data = (imgs / "query.png").read_bytes()
    with TestClient(app) as c:
        res = c.post("/v1/inspect", content=data, headers={"content-type": "image/png"}).json()
        card = c.get("/v1/model").json()
        assert c.get("/v1/figures/curves.png").headers["content-type"] == "image/png"
    nn = res["neighbours"]
    assert nn[0]["path"].endswith("query.png") and nn[0]["distance"] == pytest.approx(0, abs=1e-3)
    assert [n["distance"] for n in nn] == sorted(n["distance"] for n in nn) and nn[0]["image"]
    assert "curves" in card["figures"] and card["index"]["images"] == 6 and card["run_dir"] == str(run)


def test_an_index_of_another_width_is_refused(tmp_path):
    import numpy as np

    from alexnet.errors import ConfigError

    np.savez(tmp_path / "idx.npz", paths=np.array(["a.jpg"]), layers=np.array(["fc7"]), fc7=np.zeros((1, 4096)))
    with pytest.raises(ConfigError, match="4096"):
        served, index = load_served(str(tiny_checkpoint(tmp_path / "m.pt")), index=str(tmp_path / "idx.npz"))
        create_app(served, index=index)
    np.savez(tmp_path / "bad.npz", conv5=np.zeros((1, 3)))
    with pytest.raises(ConfigError, match="fc7"):
        load_served(str(tmp_path / "m.pt"), index=str(tmp_path / "bad.npz"))
