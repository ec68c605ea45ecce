"""`make serve`: run uvicorn on service.main:serve_app at 127.0.0.1:8000, generating a dev admin key if none is set."""

from __future__ import annotations

import logging
import os

import uvicorn

from facecore.errors import DprimeError
from facecore.logs import setup_logging
from service.config import load_settings
from service.keys import generate_key

logger = logging.getLogger("service.devserver")


def main() -> int:
    """Validate settings, make sure an admin key exists, then serve until interrupted.

    On SIGTERM uvicorn stops accepting connections, lets the requests in flight finish (for at most
    DPRIME_SHUTDOWN_GRACE_S), then runs the lifespan's shutdown, which drains the inference queues.
    """
    setup_logging("INFO")
    try:
        settings = load_settings()
    except DprimeError as exc:
        logger.error("%s", exc)
        return 2
    setup_logging(settings.log_level, json_lines=settings.log_format == "json")
    host = os.environ.get("DPRIME_HOST", "127.0.0.1")
    port = int(os.environ.get("DPRIME_PORT", "8000"))
    if settings.admin_key is None:
        if host not in ("127.0.0.1", "localhost", "::1"):
            logger.error("DPRIME_ADMIN_KEY must be set when serving on %s (only loopback gets a generated key)", host)
            return 2
        key = generate_key()
        os.environ["DPRIME_ADMIN_KEY"] = key
        logger.warning("DPRIME_ADMIN_KEY is not set; admin key for this run: %s", key)
        logger.warning("try: curl -H 'X-API-Key: %s' http://%s:%d/v1/models", key, host, port)
    base = f"http://{host}:{port}"
    logger.info("web console: %s/ (sign in with an API key); API docs: %s/docs", base, base)
    uvicorn.run(
        "service.main:serve_app",
        factory=True,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        timeout_graceful_shutdown=max(1, round(settings.shutdown_grace_s)),
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
