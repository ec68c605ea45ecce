"""Micro-batching inference: concurrent requests' faces are gathered into batches for one model session.

A request thread reserves room for its faces (or gets ``overloaded`` at once when the queue is full),
then waits on futures. One worker thread per model takes up to ``batch_size`` faces, waiting at most
``batch_wait_ms`` for a batch to fill, so a GPU sees batches instead of single images.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from concurrent.futures import TimeoutError as FutureTimeout

import numpy as np
import numpy.typing as npt

from service.admission import remaining_s
from service.error_catalogue import ServiceError

logger = logging.getLogger(__name__)

Tensor = npt.NDArray[np.float32]
EmbedFn = Callable[[Tensor], Tensor]
# Called after every batch with (batch size, faces still queued, seconds the model ran).
BatchObserver = Callable[[int, int, float], None]


def _deadline_error() -> ServiceError:
    return ServiceError(
        "deadline_exceeded",
        "the request's deadline (DPRIME_REQUEST_DEADLINE_S) passed before the model could embed its faces; retry "
        "shortly",
        headers={"Retry-After": "1"},
    )


class InferenceEngine:
    """A bounded queue of preprocessed faces in front of one model, drained in batches by one thread."""

    def __init__(
        self,
        embed_fn: EmbedFn,
        batch_size: int,
        batch_wait_ms: float,
        queue_size: int,
        name: str = "engine",
        observer: BatchObserver | None = None,
    ) -> None:
        self._embed_fn = embed_fn
        self.batch_size = batch_size
        self._wait_s = batch_wait_ms / 1000.0
        self.queue_size = queue_size
        self._items: deque[tuple[Tensor, Future[Tensor]]] = deque()
        self._cond = threading.Condition()
        self._stopping = False
        self._observer = observer
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    @property
    def depth(self) -> int:
        """Faces waiting for the model."""
        return len(self._items)

    def embed(self, tensors: Tensor, timeout_s: float = 60.0) -> Tensor:
        """Raw embeddings (N, D) for preprocessed faces (N, 3, H, W); blocks until the batch containing them ran.

        Waits at most ``timeout_s``, or until the request's deadline when that comes first.

        Raises:
            ServiceError: ``overloaded`` (503, Retry-After) when the queue cannot take all N faces now;
                ``deadline_exceeded`` (503) when the request's deadline passes before the model ran them.
        """
        left = remaining_s()
        wait_s = timeout_s if left is None else min(timeout_s, left)
        if wait_s <= 0:
            raise _deadline_error()
        futures: list[Future[Tensor]] = [Future() for _ in range(len(tensors))]
        with self._cond:
            if self._stopping:
                raise ServiceError("model_not_ready", "the model is shutting down; retry shortly")
            if len(self._items) + len(tensors) > self.queue_size:
                raise ServiceError(
                    "overloaded",
                    f"the inference queue holds {len(self._items)} of {self.queue_size} faces; retry shortly",
                    {"queue_depth": len(self._items), "queue_size": self.queue_size},
                    headers={"Retry-After": "1"},
                )
            self._items.extend(zip(tensors, futures, strict=True))
            self._cond.notify()
        end = time.monotonic() + wait_s
        try:
            return np.stack([f.result(timeout=max(end - time.monotonic(), 0.0)) for f in futures])
        except FutureTimeout:
            for f in futures:
                f.cancel()  # still queued: the worker drops them instead of running the model for nobody
            raise _deadline_error() from None

    def close(self) -> None:
        """Finish queued work, then stop the worker."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._thread.join(timeout=30)

    def _take_batch(self) -> list[tuple[Tensor, Future[Tensor]]]:
        with self._cond:
            while not self._items and not self._stopping:
                self._cond.wait()
            if not self._items:
                return []
            deadline = time.monotonic() + self._wait_s
            while len(self._items) < self.batch_size and not self._stopping:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            batch: list[tuple[Tensor, Future[Tensor]]] = []
            while self._items and len(batch) < self.batch_size:
                item = self._items.popleft()
                if item[1].set_running_or_notify_cancel():  # False: its request gave up waiting
                    batch.append(item)
            return batch

    def _run(self) -> None:
        while True:
            batch = self._take_batch()
            if not batch:
                if self._stopping and not self._items:
                    return
                continue
            futures = [f for _, f in batch]
            start = time.perf_counter()
            try:
                out = self._embed_fn(np.stack([t for t, _ in batch]))
            except Exception as exc:  # the model failed: every waiting request gets the error
                logger.exception("inference failed on a batch of %d", len(batch))
                for f in futures:
                    f.set_exception(exc)
                continue
            elapsed = time.perf_counter() - start
            for i, f in enumerate(futures):
                f.set_result(out[i])
            if self._observer is not None:
                self._observer(len(batch), self.depth, elapsed)
