"""``alexnet serve``."""
from __future__ import annotations


def register(sub) -> None:
    from . import HelpFormatter
    from .sources import add_model_source

    p = sub.add_parser(
        "serve", formatter_class=HelpFormatter, help="a page to look inside the network, and a JSON API",
        description="Serve a page (drop an image: top-5 for the centre crop and the paper's 10 crops, activation "
                    "maps of conv1..conv5 per tower, fc6..fc8's top units, conv1's filters, nearest training "
                    "images with --index, training curves for a run folder, the model's card) and a JSON API: "
                    "POST /v1/predict, POST /v1/features, GET /v1/model, GET /healthz; /openapi.json "
                    "describes it. Works offline. Binds to 127.0.0.1 unless --host says otherwise.\n\n"
                    "examples:\n  alexnet serve --checkpoint runs/demo\n"
                    "  alexnet features data/train --checkpoint runs/demo --layer fc7 -o index.npz\n"
                    "  alexnet serve --checkpoint runs/demo --index index.npz --port 8080\n"
                    "  alexnet serve --weights torchvision\n"
                    "  curl -s --data-binary @photo.jpg -H 'Content-Type: image/jpeg' "
                    "'http://127.0.0.1:8000/v1/predict?topk=3'")
    add_model_source(p)
    p.add_argument("--host", default="127.0.0.1", help="address to bind; 0.0.0.0 exposes the server to the network")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--index", help="fc7 features of training images from `alexnet features ... --layer fc7` "
                                   "(the page's nearest neighbours, Figure 4)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, help="largest accepted upload")
    p.add_argument("--max-batch", type=int, default=8, help="concurrent requests batched into one forward pass")
    p.add_argument("--max-queue", type=int, default=64, help="requests waiting beyond this are answered 503")
    p.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    p.add_argument("--access-log", action="store_true", help="one line per request on stderr")
    p.set_defaults(func=run_serve)


def run_serve(args) -> int:
    from ..errors import ConfigError
    from ..serve import serve

    if args.max_batch < 1 or args.max_queue < 1 or args.max_upload_mb <= 0:
        raise ConfigError("--max-batch and --max-queue must be >= 1 and --max-upload-mb > 0")
    return serve(args.checkpoint, weights=args.weights, host=args.host, port=args.port, index=args.index,
                 max_upload=int(args.max_upload_mb * 1024 * 1024), max_batch=args.max_batch,
                 max_queue=args.max_queue, access_log=args.access_log, threads=args.threads)
