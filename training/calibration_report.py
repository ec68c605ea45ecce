"""The calibration report: one self-contained HTML page (numbers and embedded PNG plots) beside the manifest."""

from __future__ import annotations

import base64
import html
from pathlib import Path
from typing import TYPE_CHECKING

from facecore.fileio import atomic_write_text
from facecore.manifest import ModelManifest
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
kappa_min = {u.kappa_min} (error budget {u.error_budget}); kappa trained: {u.kappa_trained}. Percentiles: {pct}.
Rejecting the lowest-kappa pairs first lowers the error by {rc.gain:.0%} of random rejection's (AURC gain).</p>
{_img(hist)}{_img(roc)}{_img(rc_path)}
</body></html>
"""
    path = out / "calibration.html"
    atomic_write_text(path, page)
    return path
