"""Service settings: one pydantic-settings class, environment prefix DPRIME_, validated at start-up."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from facecore.errors import DprimeError
from service.gallery_url import GalleryLocation, parse_gallery_url


class SettingsError(DprimeError):
    """A DPRIME_ variable has a bad value; the message names the variable."""


class Settings(BaseSettings):
    """Everything the service reads from its environment (or a .env file)."""

    model_config = SettingsConfigDict(env_prefix="DPRIME_", env_file=".env", extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="gallery, API keys and other state")
    gallery_url: str | None = Field(
        default=None,
        description="where the gallery lives: sqlite:///PATH (one process) or postgresql://USER:PASS@HOST/DB "
        "(several replicas, with API keys, audit trail and calibrations in the same database); "
        "default: sqlite:///DATA_DIR/gallery.sqlite3",
    )
    gallery_pool_size: int = Field(default=8, ge=1, le=1000, description="PostgreSQL connections per process")
    gallery_connect_timeout_s: float = Field(
        default=10.0, gt=0, le=600, description="how long start-up waits for the PostgreSQL gallery"
    )
    replica_poll_interval_s: float = Field(
        default=0.2,
        gt=0,
        le=60,
        description="PostgreSQL gallery: how often a replica reads the changes other replicas committed "
        "(enrollments, deletions, model switches)",
    )
    # bench/search.py on two CPU cores: an exact scan of 100k faces takes ~20-60 ms a query, HNSW ~1 ms at recall
    # 0.99+; below ~20k the scan stays within a few ms and needs no build at start.
    exact_search_max_faces: int = Field(
        default=20_000,
        ge=0,
        description="search scans every face exactly up to this many faces in a collection; past it, an HNSW graph",
    )
    hnsw_m: int = Field(default=32, ge=4, le=256, description="HNSW graph degree (search past exact_search_max_faces)")
    hnsw_ef_construction: int = Field(
        default=160,
        ge=8,
        le=4096,
        description="HNSW build breadth: graph quality against build time (at 1M faces, 80 left recall@10 at 0.989 "
        "even with search breadth 512; 160 reaches 1.0 at 256 for about the same build time)",
    )
    index_snapshots: bool = Field(
        default=True,
        description="keep HNSW graphs in data_dir/index between starts (about 2.3 GB per million 512-d faces), "
        "so a large collection is ready in seconds instead of rebuilt",
    )
    index_rebuild_removed_share: float = Field(
        default=0.1,
        ge=0,
        le=1,
        description="a graph read back from disk is rebuilt when more than this share of its nodes are deleted faces "
        "(deleted faces stay in a graph as waypoints until it is rebuilt)",
    )
    hnsw_ef_search: int = Field(
        default=256,
        ge=8,
        le=4096,
        description="HNSW search breadth: recall against speed (at 1M faces, 256: recall@10 1.0 in 3 ms p50)",
    )
    models_dir: Path = Field(default=Path("models"), description="model artefacts and the active.json pointer")
    model_id: str | None = Field(default=None, description="serve this model instead of the registry's active one")
    providers: str = Field(
        default="auto",
        description="'auto' (CUDA when present, else CPU), or a comma list such as 'cuda,cpu' or 'cpu'; "
        "naming cuda makes it required: start-up fails if CUDA is not really in use",
    )
    intra_op_threads: int = Field(default=0, ge=0, description="onnxruntime threads per session (0 = all cores)")
    detector: str | None = Field(
        default=None,
        description="override the detector the model was calibrated with: 'retinaface', 'retinaface:PATH' or "
        "'yunet:PATH' (the stated rates may then not hold); default: the manifest's",
    )
    detector_path: Path | None = Field(
        default=None, description="ONNX file of the manifest's detector when it is not the packaged RetinaFace"
    )
    det_score_threshold: float | None = Field(default=None, gt=0, lt=1, description="override the manifest's")
    det_nms_threshold: float | None = Field(default=None, gt=0, lt=1, description="override the manifest's")
    det_max_side: int | None = Field(default=None, ge=64, le=4096, description="override the manifest's")
    calibration_n_boot: int = Field(default=200, ge=20, le=10_000, description="bootstrap draws of gallery checks")
    max_image_bytes: int = Field(default=10 * 1024 * 1024, ge=1024)
    max_image_pixels: int = Field(default=40_000_000, ge=4096)
    max_images_per_request: int = Field(default=20, ge=1, le=1000, description="images in one enrollment")
    multiple_faces: Literal["largest", "error"] = Field(default="largest", description="default several-faces policy")
    batch_size: int = Field(default=32, ge=1, le=1024, description="largest batch the engine sends to the model")
    batch_wait_ms: float = Field(default=2.0, ge=0, le=1000, description="how long a batch waits to fill")
    queue_size: int = Field(default=256, ge=1, description="pending faces before requests get 503")
    max_in_flight: int = Field(
        default=16,
        ge=1,
        le=10_000,
        description="requests admitted at once (all routes but /health, /ready, /metrics); past it: 503 at once",
    )
    request_deadline_s: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="an admitted request's body must arrive and its faces be embedded "
        "within this many seconds, else 408 / 503",
    )
    overload_retry_after_s: float = Field(default=1.0, gt=0, le=3600, description="Retry-After of a shed request")
    auth_max_failures: int = Field(default=10, ge=1, description="wrong API keys a client may send per window")
    auth_failure_window_s: float = Field(default=60.0, gt=0, description="window of auth_max_failures, seconds")
    key_touch_interval_s: float = Field(
        default=60.0, ge=0, description="a key's last-used time is written at most this often (seconds)"
    )
    max_metadata_bytes: int = Field(default=16 * 1024, ge=2, description="largest metadata JSON of an identity")
    cors_origins: str = Field(
        default="", description="comma list of origins allowed to call the API from a browser; empty: CORS off"
    )
    log_format: Literal["json", "text"] = Field(default="json", description="service log lines: JSON or text")
    shutdown_grace_s: float = Field(
        default=30.0,
        gt=0,
        description="on SIGTERM, how long in-flight requests may take to finish (make serve; a server started with "
        "uvicorn directly takes its --timeout-graceful-shutdown)",
    )
    admin_key: SecretStr | None = Field(default=None, description="bootstrap admin API key")
    store_crops: bool = Field(default=True, description="keep face chips so a new model can re-embed the gallery")
    crop_format: Literal["png", "jpeg"] = "png"
    crop_quality: int = Field(default=95, ge=50, le=100)
    operating_point: str | None = Field(default=None, description="operating point name; default: the manifest's")
    search_max_k: int = Field(default=100, ge=1, le=10_000)
    warmup: bool = True
    expose_docs: bool = Field(
        default=True, description="serve /docs, /redoc and /openapi.json (the schema holds no data)"
    )
    console: bool = Field(default=True, description="serve the web console at / (it holds no data, only calls the API)")
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    @field_validator("providers")
    @classmethod
    def _providers(cls, value: str) -> str:
        names = [p.strip().lower() for p in value.split(",") if p.strip()]
        if names == ["auto"]:
            return "auto"
        bad = [n for n in names if n not in ("cuda", "cpu")]
        if not names or bad:
            raise ValueError(f"expected 'auto' or a comma list of cuda/cpu, got {value!r}")
        return ",".join(names)

    @field_validator("gallery_url")
    @classmethod
    def _gallery_url(cls, value: str | None) -> str | None:
        if value is None or value == "":
            return None
        parse_gallery_url(value)  # ValueError names what is wrong
        return value

    @property
    def gallery_location(self) -> GalleryLocation:
        """The gallery's backend and address."""
        if self.gallery_url is None:
            path = self.data_dir / "gallery.sqlite3"
            return GalleryLocation(backend="sqlite", url=f"sqlite:///{path}", sqlite_path=path)
        return parse_gallery_url(self.gallery_url)

    @property
    def provider_list(self) -> list[str]:
        """Providers to request, in order ('auto' resolved by the caller against what onnxruntime has)."""
        return self.providers.split(",")

    @property
    def cuda_required(self) -> bool:
        """True when CUDA was named explicitly."""
        return "cuda" in self.provider_list

    @property
    def gallery_path(self) -> Path:
        """SQLite gallery file (where a SQLite gallery_url points, else the default place)."""
        return self.gallery_location.sqlite_path or self.data_dir / "gallery.sqlite3"

    @property
    def calibrations_path(self) -> Path:
        """SQLite file of gallery-calibrated decision sets."""
        return self.data_dir / "calibrations.sqlite3"

    @property
    def detector_overridden(self) -> bool:
        """A setting replaces part of the calibrated detector."""
        return any(
            v is not None for v in (self.detector, self.det_score_threshold, self.det_nms_threshold, self.det_max_side)
        )

    @property
    def audit_path(self) -> Path:
        """SQLite file of the append-only audit trail."""
        return self.data_dir / "audit.sqlite3"

    @property
    def cors_origin_list(self) -> list[str]:
        """Origins allowed by CORS (empty: CORS off)."""
        return [o.strip() for o in self.cors_origins.split(",") if o.strip()]

    @property
    def keys_path(self) -> Path:
        """SQLite API-key file."""
        return self.data_dir / "keys.sqlite3"


def load_settings(**overrides: object) -> Settings:
    """Settings from the environment; a bad value raises SettingsError naming the DPRIME_ variable."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            field = ".".join(str(p) for p in err["loc"])
            problems.append(f"DPRIME_{field.upper()}={err.get('input')!r}: {err['msg']}")
        raise SettingsError("invalid service settings: " + "; ".join(problems)) from exc
