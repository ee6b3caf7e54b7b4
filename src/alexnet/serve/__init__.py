"""``alexnet serve``: a page to look inside the network and a JSON prediction API, from one process.

    from alexnet.serve import serve
    serve(checkpoint="runs/demo")                 # http://127.0.0.1:8000

The page (``/``) works offline: plain HTML, CSS and JavaScript shipped in the package, no build step, no CDN.
The API: ``POST /v1/predict``, ``POST /v1/features``, ``POST /v1/inspect``, ``GET /v1/model``, ``GET /healthz``,
described at ``/openapi.json``.  Binds to 127.0.0.1 unless told otherwise.
"""
from __future__ import annotations

import sys


def load_served(checkpoint: str | None = None, weights: str | None = None, index: str | None = None):
    """(ServedModel, NeighbourIndex or None) for the CLI's --checkpoint/--weights/--index."""
    from .extras import NeighbourIndex
    from .model import ServedModel, resolve_source

    served = ServedModel.load(resolve_source(checkpoint, weights))
    return served, (NeighbourIndex(index) if index else None)


def serve(checkpoint: str | None = None, *, weights: str | None = None, host: str = "127.0.0.1", port: int = 8000,
          index: str | None = None, max_upload: int | None = None, max_batch: int = 8, max_queue: int = 64,
          access_log: bool = False, threads: int | None = None) -> int:
    """Load the model and serve until SIGTERM or Ctrl-C (uvicorn's graceful shutdown; the temp folder is removed)."""
    import torch
    import uvicorn

    from .app import create_app
    from .uploads import DEFAULT_MAX_UPLOAD

    if threads:
        torch.set_num_threads(threads)
    served, idx = load_served(checkpoint, weights, index)
    app = create_app(served, index=idx, max_upload=max_upload or DEFAULT_MAX_UPLOAD, max_batch=max_batch,
                     max_queue=max_queue)
    cfg = served.model.config
    print(f"alexnet serve: {cfg.arch}, {cfg.num_classes} classes, from {served.source}; "
          f"http://{host}:{port}/ (Ctrl-C to stop)", file=sys.stderr, flush=True)
    # uvicorn's own lines (startup banner, one per request) stay off unless asked: one line above says it all.
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="info" if access_log else "warning",
                                           access_log=access_log,
                                           timeout_graceful_shutdown=5))
    # SIGTERM / Ctrl-C: uvicorn stops accepting, finishes the requests in flight, runs the lifespan's shutdown
    # (queue drained, temporary folder removed), then re-raises the signal so the exit status says what stopped it.
    server.run()
    return 0


__all__ = ["load_served", "serve"]
