"""The calibration report: one self-contained HTML page (numbers and embedded PNG plots) beside the manifest."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from facecore.fileio import atomic_write_text
from facecore.manifest import CalibrationRecord, ModelManifest
from facecore.uncertainty import risk_coverage
from training.plots import plot_risk_coverage, plot_roc, plot_score_histograms

if TYPE_CHECKING:
    from training.calibrate import ScoredPairs


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img src="data:image/png;base64,{data}" alt="{html.escape(path.stem)}">'


def write_calibration_report(manifest: ModelManifest, sample: ScoredPairs, out: Path) -> Path:
    """calibration.html (plus its PNGs) in out."""
    cal = manifest.calibration
    if cal is None:
        raise ValueError("the manifest has no calibration to report")
    out.mkdir(parents=True, exist_ok=True)
    marks = {p.name: p.threshold for p in cal.operating_points}
    if cal.bayes_threshold is not None:
        marks["bayes"] = cal.bayes_threshold
    hist, roc, rc_path = out / "scores.png", out / "roc.png", out / "risk_coverage.png"
    plot_score_histograms(sample.genuine, sample.impostor, cal.d_prime.value, marks, hist, manifest.model_id)
    plot_roc(sample.genuine, sample.impostor, roc, manifest.model_id)
    default = cal.point()
    rc = risk_coverage((sample.scores >= default.threshold) != (sample.same == 1), sample.certainty)
    plot_risk_coverage(rc, rc_path, f"{manifest.model_id} at {default.name}")
    rows = "".join(
        f"<tr><td>{html.escape(p.name)}</td><td>{'' if p.target_far is None else f'{p.target_far:g}'}</td>"
        f"<td>{p.threshold:.4f}</td><td>{p.far:.2e}</td><td>{p.frr:.4f}</td><td>{p.n_genuine}</td>"
        f"<td>{p.n_impostor}</td></tr>"
        for p in cal.operating_points
    )
    u = manifest.uncertainty
    pct = ", ".join(f"p{p:g}={v:.2f}" for p, v in u.kappa_percentiles)
    title = html.escape(manifest.model_id)
    page = f"""<!doctype html><html><head><meta charset="utf-8"><title>{title} calibration</title>
<style>body{{font-family:sans-serif;max-width:980px;margin:2em auto}}td,th{{padding:2px 10px;text-align:right}}
img{{max-width:100%}}</style></head><body>
<h1>{html.escape(manifest.model_id)}: calibration</h1>
<p>Pair set <b>{html.escape(cal.pair_set.name)}</b> (fingerprint {cal.pair_set.fingerprint}, {cal.pair_set.mode}):
{cal.pair_set.n_genuine} genuine and {cal.pair_set.n_impostor} impostor pairs. Score: cosine (higher = same).</p>
<p>Genuine {cal.genuine.mean:.4f} &plusmn; {cal.genuine.std:.4f}; impostor {cal.impostor.mean:.4f} &plusmn;
{cal.impostor.std:.4f}. d&prime; = {cal.d_prime.value:.3f} ({cal.d_prime.confidence:.0%} interval
{cal.d_prime.low:.3f} to {cal.d_prime.high:.3f}, {cal.d_prime.method} bootstrap).
EER {cal.eer:.4f} at {cal.eer_threshold:.4f}; Bayes threshold {cal.bayes_threshold}.</p>
<table><tr><th>point</th><th>target FAR</th><th>threshold</th><th>FAR</th><th>FRR</th><th>genuine</th>
<th>impostor</th></tr>{rows}</table>
<p>Default operating point: <b>{html.escape(cal.default_operating_point)}</b>.
{html.escape(u.enroll_rule or "No enrollment rule.")} kappa trained: {u.kappa_trained}. Percentiles: {pct}.
Rejecting the lowest-kappa pairs first lowers the error by {rc.gain:.0%} of random rejection's (AURC gain).</p>
{_decision_tables(cal)}
{_img(hist)}{_img(roc)}{_img(rc_path)}
</body></html>
"""
    path = out / "calibration.html"
    atomic_write_text(path, page)
    return path


def _decision_tables(cal: CalibrationRecord) -> str:
    """The three-way rule's bands and the identification thresholds, as HTML tables."""
    ds = cal.decision_set
    if ds is None:
        return ""
    parts = []
    for rule in ds.decisions:
        rows = "".join(
            f"<tr><td>{html.escape(b.name)}</td><td>{'' if b.quality_low is None else f'{b.quality_low:.2f}'}</td>"
            f"<td>{'' if b.quality_high is None else f'{b.quality_high:.2f}'}</td><td>{b.accept_threshold:.4f}</td>"
            f"<td>{b.far:.2e} [{b.far_interval[0]:.2e}, {b.far_interval[1]:.2e}]</td><td>{b.reject_threshold:.4f}</td>"
            f"<td>{b.miss_rate:.4f} [{b.miss_interval[0]:.4f}, {b.miss_interval[1]:.4f}]</td><td>{b.n_genuine}</td>"
            f"<td>{b.n_impostor}</td><td>{b.n_identities}</td><td>{'yes' if b.resolved else 'no'}</td></tr>"
            for b in (rule.overall, *rule.bands)
        )
        parts.append(
            f"<h2>Three-way rule {html.escape(rule.name)}: FAR {rule.target_far:g}, miss bound {rule.miss_bound:g}</h2>"
            "<table><tr><th>band</th><th>kappa from</th><th>to</th><th>accept</th><th>FAR [interval]</th>"
            "<th>reject</th><th>miss [interval]</th><th>genuine</th><th>impostor</th><th>people</th>"
            f"<th>resolved</th></tr>{rows}</table><p>Cllr {rule.cllr:.4f} with bands, {rule.cllr_overall:.4f} "
            "without.</p>"
        )
    ident = ds.identification
    if ident is not None:
        rows = "".join(
            f"<tr><td>{p.gallery_size}</td><td>{p.threshold:.4f}</td><td>{p.fpir:.4f}</td>"
            f"<td>{p.rank1_hit_rate:.4f}</td></tr>"
            for p in ident.points
        )
        parts.append(
            f"<h2>Identification at FPIR {ident.target_fpir:g}</h2><p>{ident.n_probes} probes; galleries up to "
            f"{ident.max_gallery_size} faces.</p><table><tr><th>gallery faces</th><th>threshold</th><th>FPIR</th>"
            f"<th>rank-1 hit rate</th></tr>{rows}</table>"
        )
    return "".join(parts)
