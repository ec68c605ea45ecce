"""The micro-batching engine: batches form under concurrency, a full queue answers at once, errors propagate."""

import threading
import time

import numpy as np
import pytest

from service.engine import InferenceEngine
from service.error_catalogue import ServiceError


def slow_double(batch: np.ndarray) -> np.ndarray:
    time.sleep(0.02)
    return batch.reshape(len(batch), -1)[:, :2] * 2


def test_concurrent_requests_are_batched_and_answered_correctly() -> None:
    sizes: list[int] = []
    engine = InferenceEngine(
        slow_double, batch_size=8, batch_wait_ms=20, queue_size=64, observer=lambda n, depth, s: sizes.append(n)
    )
    results: dict[int, np.ndarray] = {}

    def call(i: int) -> None:
        results[i] = engine.embed(np.full((1, 3, 2, 2), i, dtype=np.float32))

    threads = [threading.Thread(target=call, args=(i,)) for i in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    engine.close()
    assert all(np.all(results[i] == 2 * i) for i in range(16))
    assert sum(sizes) == 16 and max(sizes) > 1 and max(sizes) <= 8


def test_full_queue_is_refused_at_once_with_retry_after() -> None:
    gate = threading.Event()

    def blocked(batch: np.ndarray) -> np.ndarray:
        gate.wait(5)
        return batch.reshape(len(batch), -1)[:, :2]

    engine = InferenceEngine(blocked, batch_size=1, batch_wait_ms=0, queue_size=2)
    worker = threading.Thread(target=engine.embed, args=(np.zeros((2, 3, 2, 2), np.float32),))
    worker.start()
    time.sleep(0.1)  # one face is in the model, one queued; two more do not fit
    start = time.perf_counter()
    with pytest.raises(ServiceError) as info:
        engine.embed(np.zeros((2, 3, 2, 2), np.float32))
    assert time.perf_counter() - start < 0.5
    err = info.value
    assert err.code == "overloaded" and err.status == 503 and err.headers == {"Retry-After": "1"}
    assert err.details == {"queue_depth": 1, "queue_size": 2}
    gate.set()
    worker.join()
    engine.close()


def test_model_errors_reach_every_waiting_request() -> None:
    def broken(batch: np.ndarray) -> np.ndarray:
        raise RuntimeError("CUDA out of memory")

    engine = InferenceEngine(broken, batch_size=4, batch_wait_ms=1, queue_size=8)
    with pytest.raises(RuntimeError, match="CUDA out of memory"):
        engine.embed(np.zeros((3, 3, 2, 2), np.float32))
    engine.close()
    with pytest.raises(ServiceError, match="shutting down"):
        engine.embed(np.zeros((1, 3, 2, 2), np.float32))


def test_a_request_past_its_deadline_is_refused_and_its_faces_dropped() -> None:
    import contextvars

    from service import admission

    gate = threading.Event()
    ran: list[int] = []

    def gated(batch: np.ndarray) -> np.ndarray:
        gate.wait(5)
        ran.append(len(batch))
        return batch.reshape(len(batch), -1)[:, :2]

    engine = InferenceEngine(gated, batch_size=1, batch_wait_ms=0, queue_size=8)
    blocker = threading.Thread(target=engine.embed, args=(np.zeros((1, 3, 2, 2), dtype=np.float32),))
    blocker.start()  # holds the worker until the gate opens
    time.sleep(0.05)

    def with_deadline(seconds: float) -> None:
        admission._deadline.set(time.monotonic() + seconds)
        engine.embed(np.ones((2, 3, 2, 2), dtype=np.float32))

    with pytest.raises(ServiceError) as exc:
        contextvars.copy_context().run(with_deadline, 0.05)
    assert exc.value.code == "deadline_exceeded" and exc.value.status == 503
    with pytest.raises(ServiceError, match="deadline"):
        contextvars.copy_context().run(with_deadline, -1.0)  # already past: not even queued
    gate.set()
    blocker.join()
    engine.close()
    assert ran == [1]  # the two faces of the late request were dropped, not run for nobody
