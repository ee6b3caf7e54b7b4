"""Bounded concurrency: one forward pass at a time, a bounded queue in front of it, concurrent requests batched.

Requests wait in an ``asyncio.Queue`` of ``max_queue`` entries; a full queue is answered at once (503) rather than
letting latency grow without bound.  One worker takes the first waiting request and every other already waiting
(up to ``max_batch``), runs them as one forward pass in a dedicated thread, and wakes each caller with its own
result.  It never waits for company: an idle server answers one request with batch 1, and batches form only when
requests arrive faster than forward passes finish (``python -m alexnet.serve.bench`` measures whether that pays).
"""
from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import AlexNetError


class QueueFull(AlexNetError):
    """The request queue is full: the client should retry later (HTTP 503)."""


class Batcher:
    """Runs ``fn(items) -> results`` (same length) on batches of queued items, one batch at a time."""

    def __init__(self, fn: Callable[[list], list], *, max_batch: int = 8, max_queue: int = 64):
        if max_batch < 1 or max_queue < 1:
            raise ValueError("max_batch and max_queue must be >= 1")
        self.fn = fn
        self.max_batch = int(max_batch)
        self.max_queue = int(max_queue)
        self.queue: asyncio.Queue | None = None
        self.task: asyncio.Task | None = None
        self.executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alexnet-forward")
        self.batches = 0
        self.items = 0

    def start(self) -> None:
        self.queue = asyncio.Queue(maxsize=self.max_queue)
        self.task = asyncio.get_running_loop().create_task(self._work())

    async def stop(self) -> None:
        if self.task is not None:
            self.task.cancel()
            try:
                await self.task
            except asyncio.CancelledError:
                pass
        while self.queue is not None and not self.queue.empty():
            _, fut = self.queue.get_nowait()
            if not fut.done():
                fut.set_exception(QueueFull("the server is shutting down"))
        self.executor.shutdown(wait=True)

    async def submit(self, item: Any) -> Any:
        """The result for ``item``; QueueFull at once when ``max_queue`` requests are already waiting."""
        if self.queue is None:
            raise QueueFull("the server is not accepting requests (not started or shutting down)")
        fut = asyncio.get_running_loop().create_future()
        try:
            self.queue.put_nowait((item, fut))
        except asyncio.QueueFull:
            raise QueueFull(f"the request queue is full ({self.max_queue} waiting); retry later") from None
        return await fut

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            batch = [await self.queue.get()]
            while len(batch) < self.max_batch and not self.queue.empty():
                batch.append(self.queue.get_nowait())
            live = [(item, fut) for item, fut in batch if not fut.cancelled()]
            if not live:
                continue
            try:
                results = await loop.run_in_executor(self.executor, self.fn, [item for item, _ in live])
            except Exception as e:   # delivered to each caller, who answers it (the worker keeps going)
                for _, fut in live:
                    if not fut.done():
                        fut.set_exception(e)
                continue
            self.batches += 1
            self.items += len(live)
            for (_, fut), res in zip(live, results):
                if not fut.done():
                    fut.set_result(res)


__all__ = ["Batcher", "QueueFull"]
