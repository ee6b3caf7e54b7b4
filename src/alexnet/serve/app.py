"""The ASGI application: the page, the JSON API (``/v1/...``), ``/healthz`` and the OpenAPI description.

Every answer is JSON or a file of the page; a client mistake is ``{"error": one line, "status": code}`` with the
right status (400 bad image or parameter, 413 too large, 415 media type, 503 queue full), and an unexpected failure
is a 500 with a one-line message while the traceback goes to the server's log, never to the client.
"""
from __future__ import annotations

import logging
import shutil
import tempfile
import time
import uuid
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request

from .. import __version__
from ..choices import EVAL_CROPS, FEATURE_POOLS
from ..errors import AlexNetError, ConfigError, DataError
from .batching import Batcher, QueueFull
from .extras import NEIGHBOUR_LAYER, NeighbourIndex, render_figures
from .model import ServedModel
from .render import conv_layer_view, fc_layer_view, image_url
from .uploads import DEFAULT_MAX_UPLOAD, ApiError, int_param, read_image_upload

log = logging.getLogger("alexnet.serve")
STATIC = Path(__file__).parent / "static"
PAGE_FILES = {"app.js": "text/javascript", "style.css": "text/css"}

_IMAGE_BODY = {"requestBody": {"required": True, "content": {
    "image/*": {"schema": {"type": "string", "format": "binary"}},
    "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"], "properties": {
        "file": {"type": "string", "format": "binary"}}}}}}}


def error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message.splitlines()[0] if message else "error", "status": status}, status)


class State:
    """What one server holds: the model, its batcher, a private temporary folder, the figures, the index."""

    def __init__(self, served: ServedModel, index: NeighbourIndex | None, max_upload: int, max_batch: int,
                 max_queue: int):
        self.served, self.index, self.max_upload = served, index, max_upload
        self.batcher = Batcher(self.run_batch, max_batch=max_batch, max_queue=max_queue)
        self.tmp: Path | None = None
        self.figures: dict[str, Path] = {}
        self.started = time.time()

    def run_batch(self, items: list) -> list:
        """Forward-thread work: predictions batched into one pass per crop count; other jobs one by one."""
        preds = [i for i, it in enumerate(items) if it[0] == "predict"]
        out: list = [None] * len(items)
        if preds:
            probs = self.served.probabilities([items[i][1] for i in preds], [items[i][2] for i in preds])
            for i, p in zip(preds, probs):
                out[i] = p
        for i, it in enumerate(items):
            if it[0] == "call":
                try:
                    out[i] = it[1]()
                except Exception as e:   # this caller's failure only
                    out[i] = e
        return out

    async def decode(self, data: bytes):
        """Bytes -> uint8 [C, S, S] through a file in the server's own temporary folder (removed at once)."""
        path = self.tmp / f"upload-{uuid.uuid4().hex}"

        def work():
            try:
                with open(path, "wb") as f:
                    f.write(data)
                return self.served.decode(path)
            finally:
                path.unlink(missing_ok=True)
        return await run_in_threadpool(work)

    async def call(self, fn):
        res = await self.batcher.submit(("call", fn))
        if isinstance(res, Exception):
            raise res
        return res

    def topk(self, probs, k: int) -> list[dict]:
        p, idx = probs.topk(min(k, probs.numel()))
        return [{"class": self.served.names[i], "index": i, "probability": pr} for pr, i in zip(p.tolist(),
                                                                                              idx.tolist())]


def create_app(served: ServedModel, *, index: NeighbourIndex | None = None, max_upload: int = DEFAULT_MAX_UPLOAD,
               max_batch: int = 8, max_queue: int = 64) -> FastAPI:
    """The application for ``served`` (use with uvicorn, or with ``fastapi.testclient.TestClient``)."""
    st = State(served, index, max_upload, max_batch, max_queue)
    if index is not None:
        width = dict(served.model.named_modules())[NEIGHBOUR_LAYER].out_features if NEIGHBOUR_LAYER in \
            served.layer_names else None
        if width is None:
            raise ConfigError(f"--index: architecture {served.model.config.arch} has no {NEIGHBOUR_LAYER} layer")
        index.check_width(width)

    @asynccontextmanager
    async def lifespan(app):
        st.tmp = Path(tempfile.mkdtemp(prefix="alexnet-serve-"))
        try:
            st.figures = await run_in_threadpool(render_figures, served.model, served.run_dir(), st.tmp)
            st.batcher.start()
            yield
        finally:
            await st.batcher.stop()
            shutil.rmtree(st.tmp, ignore_errors=True)

    app = FastAPI(title="alexnet serve", version=__version__, lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Look inside AlexNet (Krizhevsky et al. 2012) and classify images over HTTP.")
    app.state.alexnet = st
    _add_error_handlers(app)
    _add_page_routes(app, st)
    _add_api_routes(app, st)
    return app


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    async def api_error(request, e: ApiError):
        return error(e.status, str(e))

    @app.exception_handler(QueueFull)
    async def queue_full(request, e):
        return error(503, str(e))

    @app.exception_handler(AlexNetError)
    async def user_error(request, e):
        # Pillow's bomb guard: the decoded image would be too large, so it is refused like an over-size upload
        status = 413 if isinstance(e, DataError) and "decompression bomb" in str(e) else 400
        return error(status, str(e))

    @app.exception_handler(HTTPException)
    async def http_error(request, e):
        return error(e.status_code, str(e.detail))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request, e):
        first = e.errors()[0] if e.errors() else {}
        where = ".".join(str(x) for x in first.get("loc", ()))
        return error(400, f"{where}: {first.get('msg', 'invalid request')}")

    @app.exception_handler(Exception)
    async def internal_error(request, e):
        log.error("error answering %s %s", request.method, request.url.path, exc_info=e)
        return error(500, f"internal error ({type(e).__name__}); see the server's log")


def _add_page_routes(app: FastAPI, st: State) -> None:
    @app.get("/", include_in_schema=False)
    async def page():
        return FileResponse(STATIC / "index.html", media_type="text/html")

    @app.get("/static/{name}", include_in_schema=False)
    async def static(name: str):
        if name not in PAGE_FILES:   # a fixed list: no path from the client reaches the file system
            raise ApiError(404, f"no page file {name!r}")
        return FileResponse(STATIC / name, media_type=PAGE_FILES[name])

    @app.get("/v1/figures/{name}.png", summary="conv1's filters (Figure 3) or the run's training curves",
             responses={200: {"content": {"image/png": {}}}})
    async def figure(name: str):
        if name not in st.figures:
            raise ApiError(404, f"no figure {name!r} (have: {', '.join(sorted(st.figures)) or 'none'})")
        return FileResponse(st.figures[name], media_type="image/png")


def _add_api_routes(app: FastAPI, st: State) -> None:
    served = st.served

    @app.get("/healthz", summary="liveness: the model is loaded and the queue has room")
    async def healthz():
        q = st.batcher.queue
        waiting = q.qsize() if q is not None else 0
        return {"status": "ok", "model": served.model.config.arch, "queue": waiting,
                "max_queue": st.batcher.max_queue, "batches": st.batcher.batches, "images": st.batcher.items,
                "uptime_s": round(time.time() - st.started, 1)}

    @app.get("/v1/model", summary="the model's card: architecture, switches, parameters, preprocessing, weights")
    async def model_card():
        card = served.card()
        card["figures"] = sorted(st.figures)
        card["index"] = {"path": str(st.index.path), "images": len(st.index.paths)} if st.index else None
        card["limits"] = {"max_upload_bytes": st.max_upload, "max_batch": st.batcher.max_batch,
                          "max_queue": st.batcher.max_queue}
        return card

    @app.post("/v1/predict", openapi_extra={**_IMAGE_BODY, "parameters": [
        {"name": "topk", "in": "query", "schema": {"type": "integer", "minimum": 1, "default": 5}},
        {"name": "crops", "in": "query", "schema": {"type": "integer", "enum": list(EVAL_CROPS), "default": 1}}]},
        summary="top-k classes for one image (centre crop, or the paper's 10 crops averaged)")
    async def predict(request: Request):
        data, params = await read_image_upload(request, st.max_upload)
        topk = int_param(params, "topk", 5, 1)
        crops = int_param(params, "crops", 1, 1, allowed=EVAL_CROPS)
        t0 = time.perf_counter()
        image = await st.decode(data)
        probs = await st.batcher.submit(("predict", image, crops))
        return {"predictions": st.topk(probs, topk), "crops": crops,
                "time_ms": round(1000 * (time.perf_counter() - t0), 2)}

    @app.post("/v1/features", openapi_extra={**_IMAGE_BODY, "parameters": [
        {"name": "layer", "in": "query", "schema": {"type": "string", "default": "fc7"}},
        {"name": "pool", "in": "query", "schema": {"type": "string", "enum": list(FEATURE_POOLS), "default": "none"}}]},
        summary="one layer's activations for one image, as `alexnet features` computes them")
    async def features(request: Request):
        data, params = await read_image_upload(request, st.max_upload)
        layer = served.check_layer(params.get("layer") or "fc7")
        pool = params.get("pool") or "none"
        if pool not in FEATURE_POOLS:
            raise ApiError(400, f"pool={pool!r}: expected one of {', '.join(FEATURE_POOLS)}")
        image = await st.decode(data)
        act = await st.call(lambda: served.features(image, layer, pool))
        return {"layer": layer, "pool": pool, "shape": list(act.shape), "values": act.tolist()}

    @app.post("/v1/inspect", openapi_extra=_IMAGE_BODY,
              summary="everything the page shows for one image: crops, top-5 (1 and 10 crops), layer maps, "
                      "fc units, nearest indexed images")
    async def inspect(request: Request):
        data, _ = await read_image_upload(request, st.max_upload)
        image = await st.decode(data)
        return await st.call(lambda: inspect_image(st, image))


def inspect_image(st: State, image) -> dict:
    """The page's view of one image (runs in the forward thread)."""
    served = st.served
    t0 = time.perf_counter()
    centre, ten = served.probabilities([image, image], [1, 10])
    acts, _ = served.activations(image)
    towers = served.towers
    layers = [conv_layer_view(n, acts[n], towers) for n in served.conv_layers()]
    last = served.layer_names[-1]
    fcs = [fc_layer_view(n, acts[n], served.names if n == last else None) for n in served.fc_layers()]
    out = {"input": image_url(image), "crops": [image_url(c) for c in served.crop_pixels(image)],
           "predictions": {"centre": st.topk(centre, 5), "ten_crops": st.topk(ten, 5)},
           "layers": layers, "fc": fcs, "neighbours": None}
    if st.index is not None and NEIGHBOUR_LAYER in acts:
        out["neighbours"] = st.index.nearest(acts[NEIGHBOUR_LAYER])
    out["time_ms"] = round(1000 * (time.perf_counter() - t0), 1)
    return out


__all__ = ["create_app", "error", "inspect_image"]
