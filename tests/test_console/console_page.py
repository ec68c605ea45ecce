"""Driving the console by its stable data-testids, and asking the API the same questions to compare."""

from __future__ import annotations

import base64
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import httpx2 as httpx
from selenium import webdriver
from selenium.common.exceptions import StaleElementReferenceException
from selenium.webdriver.common.by import By
from selenium.webdriver.remote.webelement import WebElement
from selenium.webdriver.support.ui import WebDriverWait

from tests.live_server import LiveServer

# The bundled model on two shared cores answers in well under a second; the margin is for a loaded machine.
WAIT_S = 90


class Console:
    """One browser tab on the console of a live server."""

    def __init__(self, driver: webdriver.Chrome, server: LiveServer) -> None:
        self.driver = driver
        self.server = server

    def open(self, page: str = "") -> None:
        self.driver.get(f"{self.server.url}/#{page}" if page else f"{self.server.url}/")
        self.wait(lambda: self.driver.execute_script("return document.body.dataset.page || ''") != "")

    def sign_in(self, key: str) -> None:
        self.by("login-key").send_keys(key)
        self.by("login-submit").click()
        # Signed in (another page shows) or refused (the error says why).
        self.wait(
            lambda: (
                self.driver.execute_script("return document.body.dataset.page") != "login"
                or self.by("login-error").text.strip()
            )
        )

    def go(self, page: str) -> None:
        self.driver.execute_script("location.hash = arguments[0]", page)
        self.wait(lambda: self.driver.execute_script("return document.body.dataset.page") == page)

    def by(self, testid: str) -> WebElement:
        return self.driver.find_element(By.CSS_SELECTOR, f'[data-testid="{testid}"]')

    def all(self, testid: str, within: WebElement | None = None) -> list[WebElement]:
        root: Any = within or self.driver
        found: list[WebElement] = root.find_elements(By.CSS_SELECTOR, f'[data-testid="{testid}"]')
        return found

    def upload(self, testid: str, paths: Sequence[Path]) -> None:
        # chromedriver takes several files for a multiple input as one newline-separated string.
        self.by(testid).send_keys("\n".join(str(p) for p in paths))

    def drop(self, zone_id: str, files: Sequence[tuple[str, bytes]]) -> None:
        """Drop files on a drop zone as a user dragging them from the desktop would (a drop event with its files)."""
        payload = [(name, base64.b64encode(data).decode()) for name, data in files]
        self.driver.execute_script(
            """
            const zone = document.getElementById(arguments[0]);
            const dt = new DataTransfer();
            for (const [name, b64] of arguments[1]) {
              const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
              dt.items.add(new File([bytes], name, { type: name.endsWith(".png") ? "image/png" : "image/jpeg" }));
            }
            zone.dispatchEvent(new DragEvent("dragover", { dataTransfer: dt, bubbles: true, cancelable: true }));
            zone.dispatchEvent(new DragEvent("drop", { dataTransfer: dt, bubbles: true, cancelable: true }));
            """,
            zone_id,
            payload,
        )

    def wait(self, condition: Callable[[], Any], timeout: float = WAIT_S) -> Any:
        # A list the page re-renders while the condition reads it leaves stale elements behind: read it again.
        return WebDriverWait(
            self.driver, timeout, poll_frequency=0.1, ignored_exceptions=(StaleElementReferenceException,)
        ).until(lambda _: condition())

    def wait_text(self, testid: str, timeout: float = WAIT_S) -> str:
        """The element's text once it has one (results are cleared when a request starts)."""
        text: str = self.wait(lambda: self.by(testid).text.strip(), timeout)
        return text

    def visible(self, testid: str) -> bool:
        return self.by(testid).is_displayed()


class Api:
    """The same server through plain HTTP, with a key."""

    def __init__(self, server: LiveServer, key: str | None = None) -> None:
        self.client = httpx.Client(base_url=server.url, headers={"X-API-Key": key or server.admin_key}, timeout=WAIT_S)

    def verify(self, a: Path, b: Path) -> dict[str, Any]:
        files = {"image_a": (a.name, a.read_bytes()), "image_b": (b.name, b.read_bytes())}
        return self._ok(self.client.post("/v1/verify", files=files))

    def verify_bytes(self, a: bytes, b: bytes) -> str:
        """The decision the API gives on two photos."""
        decision: str = self._ok(
            self.client.post("/v1/verify", files={"image_a": ("a.jpg", a), "image_b": ("b.jpg", b)})
        )["decision"]
        return decision

    def search(self, image: Path, k: int = 5) -> dict[str, Any]:
        return self._ok(
            self.client.post("/v1/search", files={"image": (image.name, image.read_bytes())}, data={"k": str(k)})
        )

    def enroll(self, name: str, images: Sequence[tuple[str, bytes]]) -> dict[str, Any]:
        return self._ok(self.client.post("/v1/identities", data={"name": name}, files=[("images", i) for i in images]))

    def identities(self, q: str) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = self._ok(self.client.get("/v1/identities", params={"q": q, "limit": 500}))[
            "items"
        ]
        return items

    def get(self, path: str) -> dict[str, Any]:
        return self._ok(self.client.get(path))

    @staticmethod
    def _ok(r: httpx.Response) -> Any:
        assert r.status_code < 300, r.text
        return r.json()
