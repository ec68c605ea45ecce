"""Failed API-key attempts counted per client, so keys cannot be guessed at the speed of the server.

A client that sent ``max_failures`` wrong keys within ``window_s`` seconds is refused until the oldest of
those failures leaves the window, whatever key it sends meanwhile (a right key among many guesses would
otherwise tell the guesser it was right). Memory is bounded: at most ``max_clients`` clients are tracked,
the least recently failing forgotten first.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class FailedAuthLimiter:
    """Sliding-window count of failed key attempts per client address."""

    def __init__(
        self,
        max_failures: int,
        window_s: float,
        max_clients: int = 10_000,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.max_clients = max_clients
        self._clock = clock
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def retry_after(self, client: str) -> float | None:
        """Seconds the client must wait before its next attempt, or None when it may try now."""
        now = self._clock()
        with self._lock:
            times = self._failures.get(client)
            if times is None:
                return None
            while times and now - times[0] >= self.window_s:
                times.popleft()
            if not times:
                del self._failures[client]
                return None
            if len(times) < self.max_failures:
                return None
            return self.window_s - (now - times[0])

    def failed(self, client: str) -> None:
        """Count one failed attempt of the client."""
        now = self._clock()
        with self._lock:
            times = self._failures.pop(client, None) or deque(maxlen=self.max_failures)
            times.append(now)
            self._failures[client] = times  # most recent last
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
