"""A bounded load test on loopback (correctness, not timing): concurrent clients, junk mixed in, a real server.

The timed benchmark is ``python -m alexnet.serve.bench`` (p50/p99 latency, images/s; batching on and off).
"""
from __future__ import annotations

from alexnet.serve import load_served
from alexnet.serve.app import create_app
from alexnet.serve.bench import background_server, get, load_test
from test_serve_common import tiny_checkpoint


def test_concurrent_clients_get_their_answers_and_the_server_stays_healthy(tmp_path):
    served, _ = load_served(str(tiny_checkpoint(tmp_path / "tiny.pt")))
    with background_server(create_app(served, max_batch=8, max_queue=64)) as base:
        r = load_test(base, clients=4, requests=6, junk_every=4)
        assert r["wrong"] == [], r["wrong"][:3]
        assert r["good"] == 18 and r["healthy_after"]
        status, health = get(base, "/healthz")
        assert status == 200 and health["queue"] == 0
        # every good image went through a forward pass, in no more passes than images
        assert health["batches"] <= health["images"] and health["images"] >= 18
