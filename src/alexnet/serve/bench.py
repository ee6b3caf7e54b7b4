"""A bounded load test on loopback: ``python -m alexnet.serve.bench --checkpoint CKPT`` (a benchmark, not a test).

Starts the server in this process (uvicorn on a free loopback port, in a thread), then ``clients`` threads each
send ``requests`` predictions (every ``junk_every``-th one junk bytes, which must come back 400), and reports p50/p99
latency of the good requests and images/s.  ``--max-batch 1 8`` compares no batching with batching.
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import io
import json
import socket
import sys
import threading
import time

import numpy as np

from ..choices import EVAL_CROPS


@contextlib.contextmanager
def background_server(app, host: str = "127.0.0.1", port: int | None = None):
    """Serve ``app`` with uvicorn in a daemon thread; yields the base URL; stops it (gracefully) on exit."""
    import uvicorn

    if port is None:
        with socket.socket() as s:
            s.bind((host, 0))
            port = s.getsockname()[1]
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", access_log=False))
    server.install_signal_handlers = lambda: None   # the main thread keeps its own Ctrl-C
    thread = threading.Thread(target=server.run, name="alexnet-serve", daemon=True)
    thread.start()
    deadline = time.time() + 60
    while not server.started:
        if not thread.is_alive() or time.time() > deadline:
            raise RuntimeError("the server did not start")
        time.sleep(0.02)
    try:
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


def post(base: str, path: str, body: bytes, content_type: str, timeout: float = 120) -> tuple[int, dict]:
    """One POST with the standard library's client: (status, JSON answer)."""
    host, port = base.split("://")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=timeout)
    try:
        conn.request("POST", path, body=body, headers={"Content-Type": content_type})
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def get(base: str, path: str) -> tuple[int, dict]:
    host, port = base.split("://")[1].split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=30)
    try:
        conn.request("GET", path)
        r = conn.getresponse()
        return r.status, json.loads(r.read() or b"{}")
    finally:
        conn.close()


def sample_jpeg(seed: int, size: int = 256) -> bytes:
    """A smooth random colour picture, JPEG-encoded (the kind of upload a photo is)."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
    img = Image.fromarray(small).resize((size, size * 3 // 4), Image.BICUBIC)
    buf = io.BytesIO()
    img.save(buf, format="JPEG", quality=90)
    return buf.getvalue()


def load_test(base: str, *, clients: int = 8, requests: int = 25, junk_every: int = 5, crops: int = 1) -> dict:
    """Every good request must be answered 200 and every junk one 400; latency of the good ones, images/s."""
    images = [sample_jpeg(i) for i in range(8)]
    lat: list[float] = []
    wrong: list[str] = []
    lock = threading.Lock()

    def client(c: int):
        for r in range(requests):
            junk = junk_every and (c * requests + r) % junk_every == junk_every - 1
            body = b"not an image at all" if junk else images[(c + r) % len(images)]
            t0 = time.perf_counter()
            status, answer = post(base, f"/v1/predict?crops={crops}", body, "image/jpeg")
            dt = time.perf_counter() - t0
            with lock:
                if status != (400 if junk else 200) or (not junk and len(answer.get("predictions", [])) < 1):
                    wrong.append(f"{'junk' if junk else 'image'} -> {status} {answer}")
                elif not junk:
                    lat.append(dt)

    t0 = time.perf_counter()
    threads = [threading.Thread(target=client, args=(c,)) for c in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - t0
    health = get(base, "/healthz")
    ms = np.array(lat) * 1000 if lat else np.zeros(1)
    return {"clients": clients, "requests": clients * requests, "good": len(lat), "wrong": wrong,
            "p50_ms": float(np.percentile(ms, 50)), "p99_ms": float(np.percentile(ms, 99)),
            "images_per_s": len(lat) / wall, "wall_s": wall, "healthy_after": health[0] == 200,
            "forward_batches": health[1].get("batches"), "batched_images": health[1].get("images")}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m alexnet.serve.bench", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--checkpoint")
    src.add_argument("--weights")
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--requests", type=int, default=25, help="per client")
    p.add_argument("--junk-every", type=int, default=5, help="every n-th request is junk bytes (0: none)")
    p.add_argument("--crops", type=int, default=1, choices=EVAL_CROPS)
    p.add_argument("--max-batch", type=int, nargs="+", default=[1, 8])
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads")
    p.add_argument("--json", action="store_true")
    args = p.parse_args(argv)

    import torch

    from . import load_served
    from .app import create_app

    if args.threads:
        torch.set_num_threads(args.threads)
    served, _ = load_served(args.checkpoint, args.weights)
    results = []
    for mb in args.max_batch:
        app = create_app(served, max_batch=mb, max_queue=max(64, 2 * args.clients))
        with background_server(app) as base:
            post(base, "/v1/predict", sample_jpeg(99), "image/jpeg")   # warm-up, not counted
            r = load_test(base, clients=args.clients, requests=args.requests, junk_every=args.junk_every,
                          crops=args.crops)
        r["max_batch"] = mb
        results.append(r)
        if not args.json:
            print(f"max_batch {mb}: {r['good']} good of {r['requests']} requests from {r['clients']} clients, "
                  f"p50 {r['p50_ms']:.1f} ms, p99 {r['p99_ms']:.1f} ms, {r['images_per_s']:.1f} images/s, "
                  f"{r['batched_images']} images in {r['forward_batches']} forward passes, "
                  f"wrong answers {len(r['wrong'])}, healthy after: {r['healthy_after']}")
    if args.json:
        print(json.dumps(results))
    return 0 if all(not r["wrong"] and r["healthy_after"] for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
