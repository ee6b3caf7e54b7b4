"""alexnet serve: the JSON API in-process (the framework's test client)."""
from __future__ import annotations

import asyncio
import json
import threading

import pytest
import torch
from fastapi.testclient import TestClient

from alexnet.predict import predict
from alexnet.serve import load_served
from alexnet.serve.app import create_app
from alexnet.serve.batching import Batcher, QueueFull
from test_serve_common import CLASSES, image_bytes, png_bomb, tiny_checkpoint

KINDS = ("jpeg", "png", "gray", "rgba")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    return tiny_checkpoint(tmp_path_factory.mktemp("serve") / "tiny.pt")


@pytest.fixture(scope="module")
def client(ckpt):
    served, _ = load_served(str(ckpt))
    app = create_app(served, max_upload=256 * 1024)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def post_image(client, data: bytes, media: str, path: str = "/v1/predict", **params):
    return client.post(path, content=data, headers={"content-type": media}, params=params)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("crops", [1, 10])
def test_each_kind_of_image_gets_the_numbers_alexnet_predict_gives(client, ckpt, tmp_path, kind, crops):
    data, media = image_bytes(kind)
    r = post_image(client, data, media, topk=3, crops=crops)
    assert r.status_code == 200, r.text
    got = r.json()["predictions"]
    assert len(got) == 3 and r.json()["crops"] == crops
    f = tmp_path / f"img.{'jpg' if kind == 'jpeg' else 'png'}"
    f.write_bytes(data)
    want = predict(str(ckpt), [str(f)], topk=3, crops=crops, device="cpu")[0]["predictions"]
    assert [p["index"] for p in got] == [p["index"] for p in want]
    assert [p["class"] for p in got] == [p["class"] for p in want]
    assert [p["probability"] for p in got] == pytest.approx([p["probability"] for p in want], abs=1e-6)


def test_multipart_upload_with_parameters_as_form_fields(client):
    data, media = image_bytes("jpeg", seed=3)
    r = client.post("/v1/predict", files={"file": ("photo.jpg", data, media)}, data={"topk": "2", "crops": "10"})
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == 2 and r.json()["crops"] == 10
    assert {p["class"] for p in r.json()["predictions"]} <= set(CLASSES)
    r = client.post("/v1/predict", files={"other": ("x.txt", b"", "text/plain")}, data={"topk": "2"})
    assert r.status_code == 400


def test_topk_larger_than_the_classes_gives_every_class(client):
    r = post_image(client, *image_bytes("png"), topk=50)
    assert r.status_code == 200
    ps = r.json()["predictions"]
    assert len(ps) == len(CLASSES) and sum(p["probability"] for p in ps) == pytest.approx(1, abs=1e-5)


def error_of(r, status: int) -> str:
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "status"} and body["status"] == status
    assert "\n" not in body["error"] and "Traceback" not in body["error"]
    return body["error"]


@pytest.mark.parametrize("body, media, status, words", [
    (b"\x00junk bytes, not a picture" * 10, "image/jpeg", 400, "not an image"),
    (b"", "image/png", 400, "empty body"),
    (b"GIF89a" + b"\x00" * 40, "application/octet-stream", 400, "image"),
    (png_bomb(), "image/png", 413, "decompression bomb"),
    (b"\xff" * (256 * 1024 + 1), "image/jpeg", 413, "over the limit"),
    (b'{"image": 1}', "application/json", 415, "unsupported media type"),
    (b"hello", "text/plain", 415, "unsupported media type"),
])
def test_bad_uploads_get_one_line_json_errors(client, body, media, status, words):
    assert words in error_of(post_image(client, body, media), status)


def test_truncated_jpeg_is_a_400(client):
    data, media = image_bytes("jpeg")
    assert "corrupt" in error_of(post_image(client, data[: len(data) // 3], media), 400)


@pytest.mark.parametrize("params, words", [
    ({"topk": "abc"}, "topk='abc'"), ({"topk": "0"}, "topk=0"), ({"topk": "-2"}, "topk=-2"),
    ({"crops": "3"}, "crops=3"), ({"crops": "ten"}, "crops='ten'"),
])
def test_bad_parameters_are_400_naming_the_parameter(client, params, words):
    assert words in error_of(post_image(client, *image_bytes("png"), **params), 400)


def test_features_of_a_layer_and_a_wrong_layer_name(client):
    data, media = image_bytes("jpeg")
    r = post_image(client, data, media, "/v1/features", layer="fc7")
    assert r.status_code == 200 and r.json()["shape"] == [64] and len(r.json()["values"]) == 64
    r = post_image(client, data, media, "/v1/features", layer="conv5", pool="avg")
    assert r.status_code == 200 and r.json()["shape"] == [256]
    r = post_image(client, data, media, "/v1/features", layer="conv2")
    assert r.json()["shape"] == [256, 7, 7]
    msg = error_of(post_image(client, data, media, "/v1/features", layer="conv9"), 400)
    assert "conv9" in msg and "conv5" in msg
    assert "pool=" in error_of(post_image(client, data, media, "/v1/features", layer="fc7", pool="max"), 400)


def test_model_card_health_and_openapi(client):
    card = client.get("/v1/model").json()
    assert card["architecture"] == "paper" and card["switches"]["towers"] == 2
    assert card["parameters"] > 0 and card["classes"] == CLASSES
    assert card["preprocessing"]["crop"] == 64 and card["accuracy"]["val_top1_error"] == 0.25
    assert [row["layer"] for row in card["layers"]][:2] == ["conv1", "conv2"]
    assert "filters" in card["figures"] and card["limits"]["max_upload_bytes"] == 256 * 1024
    h = client.get("/healthz")
    assert h.status_code == 200 and h.json()["status"] == "ok"
    spec = client.get("/openapi.json").json()
    for path in ("/v1/predict", "/v1/features", "/v1/model", "/healthz"):
        assert path in spec["paths"]
    assert "multipart/form-data" in spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"]
    assert client.get("/v1/figures/filters.png").headers["content-type"] == "image/png"
    assert client.get("/").headers["content-type"].startswith("text/html")
    assert client.get("/static/app.js").status_code == 200


def test_unknown_paths_and_methods_are_json(client):
    error_of(client.get("/nowhere"), 404)
    error_of(client.get("/static/../model.py"), 404)
    error_of(client.get("/v1/predict"), 405)
    error_of(client.get("/v1/figures/curves.png"), 404)   # not a run folder: no curves


def test_an_internal_failure_is_a_500_without_traceback(ckpt, monkeypatch):
    served, _ = load_served(str(ckpt))
    monkeypatch.setattr(served, "probabilities", lambda *a: 1 / 0)
    with TestClient(create_app(served), raise_server_exceptions=False) as c:
        msg = error_of(post_image(c, *image_bytes("png")), 500)
        assert "ZeroDivisionError" in msg and "line" not in msg
        assert c.get("/healthz").status_code == 200   # the worker survived


def test_a_full_queue_answers_at_once_and_the_batcher_batches():
    release = threading.Event()
    seen = []

    def slow(items):
        release.wait(10)
        seen.append(len(items))
        return [x * 2 for x in items]

    async def scenario():
        b = Batcher(slow, max_batch=4, max_queue=3)
        b.start()
        first = asyncio.ensure_future(b.submit(0))
        await asyncio.sleep(0.05)                       # the worker holds item 0
        waiting = [asyncio.ensure_future(b.submit(i)) for i in (1, 2, 3)]
        await asyncio.sleep(0.01)
        with pytest.raises(QueueFull):
            await b.submit(99)                          # 3 waiting: the 4th is refused, not queued
        release.set()
        results = await asyncio.gather(first, *waiting)
        await b.stop()
        return results

    assert asyncio.run(scenario()) == [0, 2, 4, 6]
    assert seen == [1, 3]                               # the three waiting ones went through in one pass


def test_queue_full_is_a_503(ckpt):
    served, _ = load_served(str(ckpt))
    app = create_app(served)
    with TestClient(app, raise_server_exceptions=False) as c:
        async def refuse(item):
            raise QueueFull("the request queue is full (64 waiting); retry later")
        app.state.alexnet.batcher.submit = refuse
        assert "queue is full" in error_of(post_image(c, *image_bytes("png")), 503)


def test_unknown_weights_name_is_a_clear_error():
    from alexnet.cli import main
    from alexnet.errors import CheckpointError, ConfigError
    from alexnet.serve.model import resolve_source

    with pytest.raises(CheckpointError, match="not a registered weights name"):
        resolve_source(None, "alexnet-imagenet")
    with pytest.raises(ConfigError, match="exactly one"):
        resolve_source(None, None)
    assert main(["serve", "--weights", "alexnet-imagenet"]) == 1


def test_the_temporary_folder_is_removed_at_shutdown(ckpt):
    served, _ = load_served(str(ckpt))
    app = create_app(served)
    with TestClient(app) as c:
        tmp = app.state.alexnet.tmp
        assert c.post("/v1/predict", content=b"junk", headers={"content-type": "image/png"}).status_code == 400
        assert [p.name for p in tmp.iterdir()] == ["filters.png"]   # the upload did not stay
    assert not tmp.exists()


def test_inspect_payload(client):
    r = post_image(client, *image_bytes("jpeg"), path="/v1/inspect")
    assert r.status_code == 200, r.text
    res = r.json()
    assert len(res["crops"]) == 10 and all(u.startswith("data:image/png;base64,") for u in res["crops"])
    assert [layer["name"] for layer in res["layers"]] == ["conv1", "conv2", "conv3", "conv4", "conv5"]
    assert res["layers"][0]["shape"] == [96, 15, 15] and len(res["layers"][0]["towers"]) == 2
    assert all(0 <= ch < 48 for ch in res["layers"][0]["towers"][0]["channels"])
    assert all(48 <= ch < 96 for ch in res["layers"][0]["towers"][1]["channels"])
    assert [f["name"] for f in res["fc"]] == ["fc6", "fc7", "fc8"]
    assert res["fc"][2]["units"][0]["label"] in CLASSES
    json.dumps(res)
    centre = post_image(client, *image_bytes("jpeg"), topk=5).json()["predictions"]
    assert [p["index"] for p in res["predictions"]["centre"]] == [p["index"] for p in centre]


def test_batched_forward_matches_one_at_a_time(ckpt):
    from alexnet.serve.model import ServedModel

    served = ServedModel.load(str(ckpt))
    imgs = [torch.randint(0, 256, (3, 72, 72), dtype=torch.uint8) for _ in range(5)]
    together = served.probabilities(imgs, [1, 10, 1, 1, 10])
    for img, crops, p in zip(imgs, [1, 10, 1, 1, 10], together):
        assert torch.allclose(served.probabilities([img], [crops])[0], p, atol=1e-6)
