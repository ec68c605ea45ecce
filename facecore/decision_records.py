"""What a three-way decision and an identification promise are made of, as the manifest stores them.

A verify decision compares the cosine with two thresholds of the pair's quality band: ``match`` at or above the
accept threshold (the band's impostors score there at most ``target_far`` of the time), ``non_match`` below the
reject threshold (at most ``miss_bound`` of the band's genuine pairs score there), ``uncertain`` in between.
An identification decision compares the best score with a threshold chosen for the gallery's size, so that a
search by a person who is not enrolled names someone at most ``target_fpir`` of the time. See docs/method.md.
"""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Record(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DetectorRecord(_Record):
    """The face detector a model's numbers were measured with (the service uses it unless told otherwise)."""

    kind: str
    onnx_sha256: str = Field(pattern=r"^[0-9a-f]{64}$")
    max_side: int = Field(description="the longer image side the detector runs at, in pixels")
    score_threshold: float
    nms_threshold: float


class BandRecord(_Record):
    """Thresholds and measured rates of one pair-quality band (quality = the smaller kappa of the two faces)."""

    name: str
    quality_low: float | None = Field(description="lowest pair quality in the band (None: no lower bound)")
    quality_high: float | None = Field(description="pair quality at which the next band starts (None: no bound)")
    resolved: bool = Field(description="False: too few pairs to place its thresholds; the overall band stands in")
    accept_threshold: float
    reject_threshold: float
    target_far: float
    far: float = Field(description="impostor pairs of the band at or above the accept threshold")
    far_interval: tuple[float, float] = Field(description="identity-bootstrap interval of that FAR")
    frr: float = Field(description="genuine pairs of the band below the accept threshold (not matched)")
    miss_bound: float
    miss_rate: float = Field(description="genuine pairs of the band below the reject threshold")
    miss_interval: tuple[float, float] = Field(description="identity-bootstrap interval of that miss rate")
    n_genuine: int
    n_impostor: int
    n_identities: int
    llr_slope: float = Field(description="log10 LR(s) = llr_slope * s + llr_intercept (prior-free)")
    llr_intercept: float
    identities_needed: int | None = Field(default=None, description="for an unresolved band: people to resolve it")

    def log10_lr(self, score: float) -> float:
        """Calibrated log10 likelihood ratio, same person against different people, at this score."""
        return self.llr_slope * score + self.llr_intercept


class DecisionRecord(_Record):
    """A three-way 1:1 rule: an overall (kappa-blind) band and kappa bands that fall back to it when too small."""

    name: str = Field(description="what requests call it by, e.g. far_1e-3")
    target_far: float = Field(gt=0, lt=1)
    miss_bound: float = Field(gt=0, lt=1)
    quality: Literal["min_kappa"] = "min_kappa"
    confidence: float = Field(description="coverage of the bootstrap intervals the thresholds are held to")
    min_pairs_factor: float = Field(description="a band needs factor/target_far impostor and factor/beta genuine pairs")
    min_identities: int
    n_boot: int
    overall: BandRecord
    bands: list[BandRecord]
    cllr: float = Field(description="Cllr of the banded LLR on the calibration pairs (0 perfect, 1 uninformative)")
    cllr_overall: float = Field(description="Cllr of the overall band's LLR on the same pairs")

    @model_validator(mode="after")
    def _ascending(self) -> DecisionRecord:
        lows = [b.quality_low for b in self.bands[1:]]
        if any(lo is None for lo in lows) or lows != sorted(lows):  # type: ignore[type-var]
            raise ValueError("bands must ascend in quality, only the first open below")
        return self

    def own_band(self, quality: float) -> BandRecord | None:
        """The quality band a pair of this quality falls in, resolved or not (None when the rule has no bands)."""
        chosen = None
        for band in self.bands:
            if band.quality_low is None or quality >= band.quality_low:
                chosen = band
        return chosen

    def band_for(self, quality: float) -> BandRecord:
        """The band whose thresholds apply to a pair of this quality (the overall band stands in for a small one)."""
        own = self.own_band(quality)
        return own if own is not None and own.resolved else self.overall


class IdentificationPoint(_Record):
    """The per-comparison threshold that keeps the FPIR target at one gallery size (in faces)."""

    gallery_size: int
    threshold: float
    fpir: float = Field(description="FPIR at this threshold on the calibration searches")
    rank1_hit_rate: float = Field(description="share of searches by enrolled people whose mate is first and matches")


class IdentificationRecord(_Record):
    """Open-set identification thresholds by gallery size, for one FPIR target."""

    target_fpir: float = Field(gt=0, lt=1)
    n_probes: int
    max_gallery_size: int = Field(description="the largest gallery the calibration searches can represent")
    points: list[IdentificationPoint]

    def point_for(self, gallery_size: int) -> tuple[IdentificationPoint, bool]:
        """The point for a gallery (the next larger size, which is stricter) and whether the size is resolved."""
        for p in self.points:
            if p.gallery_size >= gallery_size:
                return p, True
        return self.points[-1], False


class ScoreHistogramRecord(_Record):
    """Densities of the calibration scores, for plots and monitoring buckets."""

    edges: list[float]
    genuine: list[float]
    impostor: list[float]


class DecisionSet(_Record):
    """Everything the service decides with, from one calibration set (the manifest's or a gallery's)."""

    id: str = Field(description="'manifest' or the gallery calibration's id")
    source: Literal["manifest", "gallery"]
    name: str = Field(description="the calibration set's name")
    created: datetime
    decisions: list[DecisionRecord]
    default_decision: str
    identification: IdentificationRecord | None = None
    histogram: ScoreHistogramRecord | None = None

    @model_validator(mode="after")
    def _default_exists(self) -> DecisionSet:
        names = [d.name for d in self.decisions]
        if self.default_decision not in names:
            raise ValueError(f"default_decision {self.default_decision!r} is not one of {names}")
        return self

    def decision(self, name: str | None = None) -> DecisionRecord:
        """The named rule, or the default one."""
        wanted = name or self.default_decision
        for d in self.decisions:
            if d.name == wanted:
                return d
        raise KeyError(f"no decision rule {wanted!r}; have {[d.name for d in self.decisions]}")
