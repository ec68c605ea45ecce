"""What the decisions promise, measured on people the model neither trained nor calibrated on.

Every face goes through the service's face path (facepipe, the manifest's detector, onnxruntime). Per evaluated
pair set (LFW dev fold 9, CFP frontal-frontal and frontal-profile folds 4-5, the dev low-resolution pairs), per
model and per rule:
  kappa-aware  the manifest's three-way rule with its kappa bands
  kappa-blind  the same targets with the overall band only
  decide-all   match at the overall accept threshold, non_match below it (no abstention)
it reports the abstention, the error among decided pairs, the FAR among decided impostors and the miss rate
(genuine pairs called non_match), with 95 % identity-bootstrap intervals.

Open-set identification: the evaluated LFW and CFP people are split at random into enrolled (one photo each) and
not enrolled; the enrolled people's other photos are mated searches, the others' photos non-mated searches.
Gallery sizes 100 and 800 faces (the large one filled with the dev low-resolution people's crops, also held out,
as distractors). FPIR is the share of non-mated searches that return `match`; the rank-1 hit rate the share of mated
searches that return `match` with the right person first.

Usage: python bench/decisions.py [--compare ID@GIT_REVISION ...]   (writes bench/results/decisions.*)
    make bench-decisions   (the bundled model beside the model it replaced, taken from git history)
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import RESULTS, data_dir, markdown_table, write_json  # noqa: E402
from bench.heldout import HeldOut, check_unseen, held_out, model_dirs  # noqa: E402
from facecore.decision import decide_search, pair_quality  # noqa: E402
from facecore.decision_check import rate_interval  # noqa: E402
from facecore.decision_fit import decide_many  # noqa: E402
from facecore.decision_records import DecisionRecord, IdentificationRecord  # noqa: E402
from training.data.pairs import PairSet  # noqa: E402

logger = logging.getLogger("bench.decisions")
SPLITS = 5
SMALL_GALLERY, LARGE_GALLERY = 100, 800


def embed(model_dir: Path, files: list[Path], cache: Path) -> np.ndarray:
    """Raw embeddings through the face path with the manifest's detector (NaN rows: no face), cached."""
    from facecore.manifest import load_manifest
    from facepipe.detectors import DetectorSpec, spec_for_record
    from training.calibrate import embed_for_calibration

    manifest = load_manifest(model_dir)
    spec = spec_for_record(manifest.detector) if manifest.detector else DetectorSpec()
    return embed_for_calibration(model_dir, files, False, spec, cache, None)


@dataclass(frozen=True)
class ScoredPairs:
    """A pair set's cosines and pair qualities (the smaller kappa), which are genuine, and each pair's people."""

    scores: np.ndarray
    quality: np.ndarray
    same: np.ndarray
    people: np.ndarray  # (n, 2) indices into the pair set's identities
    without_face: int


def score_pairs(model_dir: Path, pairs: PairSet, cache: Path, people: set[str] | None = None) -> ScoredPairs:
    """Every pair with a face on both sides through the face path (only pairs of ``people``, when given)."""
    from facecore.vmf import embedding_to_vmf

    raw = embed(model_dir, list(pairs.images), cache)  # type: ignore[arg-type]
    found = np.isfinite(raw).all(axis=1)
    usable = found[pairs.first] & found[pairs.second]
    without_face = int((~usable).sum())
    if people is not None:
        names = np.asarray(pairs.identities)
        usable &= np.isin(names[pairs.first], list(people)) & np.isin(names[pairs.second], list(people))
    sub = pairs.subset(usable)
    mu, kappa = embedding_to_vmf(np.where(found[:, None], raw, 1.0))
    ids = np.unique(np.asarray(sub.identities), return_inverse=True)[1]
    return ScoredPairs(
        scores=np.sum(mu[sub.first] * mu[sub.second], axis=1),
        quality=np.minimum(kappa[sub.first], kappa[sub.second]),
        same=sub.same == 1,
        people=np.stack([ids[sub.first], ids[sub.second]], axis=1),
        without_face=without_face,
    )


def rules(rule: DecisionRecord) -> dict[str, DecisionRecord]:
    """The three rules compared: kappa-aware, kappa-blind (overall band only), decide-all (no reject band)."""
    blind = rule.model_copy(update={"bands": []})
    overall = rule.overall.model_copy(update={"reject_threshold": rule.overall.accept_threshold})
    return {
        "kappa-aware": rule,
        "kappa-blind": blind,
        "decide-all": rule.model_copy(update={"bands": [], "overall": overall}),
    }


def pair_rows(
    name: str, scores: np.ndarray, quality: np.ndarray, same: np.ndarray, people: np.ndarray, rule: DecisionRecord
) -> list[dict[str, Any]]:
    """One row per rule: abstention, error among decided, FAR among decided impostors, miss rate."""
    out = []
    for rule_name, r in rules(rule).items():
        outcome = decide_many(r, scores, quality)
        decided = outcome != "uncertain"
        wrong = decided & ((outcome == "match") != same)
        imp_dec = decided & ~same
        row: dict[str, Any] = {
            "set": name,
            "rule": rule_name,
            "pairs": int(scores.size),
            "abstention": float(np.mean(~decided)),
            "error_decided": float(wrong.sum() / max(decided.sum(), 1)),
            "far_decided": float((imp_dec & (outcome == "match")).sum() / max(imp_dec.sum(), 1)),
            "miss_rate": float(np.mean(outcome[same] == "non_match")),
        }
        row["error_decided_ci"] = rate_interval(wrong[decided], people[decided], 200, 0.95)
        row["abstention_ci"] = rate_interval(~decided, people, 200, 0.95)
        out.append(row)
    return out


def identification_rows(
    mu: np.ndarray,
    kappa: np.ndarray,
    person: np.ndarray,
    distractor_mu: np.ndarray,
    distractor_kappa: np.ndarray,
    rule: DecisionRecord,
    ident: IdentificationRecord,
    seed: int = 0,
) -> list[dict[str, Any]]:
    """Open-set searches at two gallery sizes, pooled over random enrolled / not-enrolled splits."""
    rng = np.random.default_rng(seed)
    people = np.unique(person)
    out = []
    for size in (SMALL_GALLERY, LARGE_GALLERY):
        tally = {"mated": 0, "hits": 0, "mated_uncertain": 0, "non_mated": 0, "false_matches": 0, "nm_uncertain": 0}
        for _ in range(SPLITS):
            n_enrolled = min(size, people.size - 100)
            enrolled = rng.choice(people, n_enrolled, replace=False)
            first = np.array([np.nonzero(person == p)[0][0] for p in enrolled])
            g_mu, g_k, g_owner = mu[first], kappa[first], enrolled
            n_fill = size - n_enrolled
            if n_fill > 0:
                pick = rng.choice(distractor_mu.shape[0], n_fill, replace=False)
                g_mu = np.concatenate([g_mu, distractor_mu[pick]])
                g_k = np.concatenate([g_k, distractor_kappa[pick]])
                g_owner = np.concatenate([g_owner, np.full(n_fill, -1)])
            for i in range(mu.shape[0]):
                if i in set(first.tolist()):
                    continue
                sims = g_mu @ mu[i]
                best = int(np.argmax(sims))
                verdict = decide_search(float(sims[best]), pair_quality(kappa[i], g_k[best]), size, rule, ident)
                if person[i] in set(enrolled.tolist()):
                    tally["mated"] += 1
                    tally["hits"] += int(verdict.result == "match" and g_owner[best] == person[i])
                    tally["mated_uncertain"] += int(verdict.result == "uncertain")
                else:
                    tally["non_mated"] += 1
                    tally["false_matches"] += int(verdict.result == "match")
                    tally["nm_uncertain"] += int(verdict.result == "uncertain")
        point, resolved = ident.point_for(size)
        out.append(
            {
                "gallery_faces": size,
                "distractor_faces": max(size - (people.size - 100), 0),
                "target_fpir": ident.target_fpir,
                "threshold": point.threshold,
                "calibrated_gallery_size": point.gallery_size,
                "resolvable": resolved,
                "fpir_observed": tally["false_matches"] / max(tally["non_mated"], 1),
                "non_mated_searches": tally["non_mated"],
                "non_mated_uncertain": tally["nm_uncertain"] / max(tally["non_mated"], 1),
                "rank1_hit_rate": tally["hits"] / max(tally["mated"], 1),
                "rank1_hit_rate_stated": point.rank1_hit_rate,
                "mated_searches": tally["mated"],
                "mated_uncertain": tally["mated_uncertain"] / max(tally["mated"], 1),
            }
        )
    return out


def measure(model_dir: Path, held: HeldOut, cache: Path) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """Pair rows and open-set rows of one model."""
    from facecore.manifest import load_manifest
    from facecore.vmf import embedding_to_vmf

    manifest = load_manifest(model_dir)
    if manifest.calibration is None or manifest.calibration.decision_set is None:
        raise SystemExit(f"{model_dir.name} has no three-way rule to measure")
    ds = manifest.calibration.decision_set
    rule = ds.decision()
    rows: list[dict[str, Any]] = []
    for name, pairs in held.pairs.items():
        scored = score_pairs(model_dir, pairs, cache)
        for row in pair_rows(name, scored.scores, scored.quality, scored.same, scored.people, rule):
            rows.append({"model": model_dir.name, **row, "pairs_without_face": scored.without_face})
    files, labels = [], []
    for key in ("LFW", "CFP"):
        files += held.galleries[key][0]
        labels += held.galleries[key][1]
    raw = embed(model_dir, files, cache)
    found = np.isfinite(raw).all(axis=1)
    mu, kappa = embedding_to_vmf(raw[found])
    person = np.unique(np.asarray(labels)[found], return_inverse=True)[1]
    d_files = held.galleries["low-res"][0] if "low-res" in held.galleries else []
    d_raw = embed(model_dir, d_files, cache)
    d_mu, d_kappa = embedding_to_vmf(d_raw[np.isfinite(d_raw).all(axis=1)])
    if ds.identification is None:
        raise SystemExit(f"{model_dir.name} has no identification thresholds")
    open_set = identification_rows(mu, kappa, person, d_mu, d_kappa, rule, ds.identification)
    return rows, [{"model": model_dir.name, **r} for r in open_set]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=data_dir())
    parser.add_argument("--models-dir", type=Path, default=REPO / "models")
    parser.add_argument("--model-id", default=None, help="default: the active model")
    parser.add_argument("--compare", action="append", default=[], help="ID@GIT_REVISION of another model")
    parser.add_argument("--cache", type=Path, default=REPO / ".cache" / "dprime")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from facecore.registry import ModelRegistry

    active = str(args.model_id or ModelRegistry(args.models_dir).active_id())
    dirs = model_dirs(args.models_dir, active, args.compare, args.cache)
    record = check_unseen(dirs[active], set())
    held = held_out(args.data, record, args.cache)
    rows: list[dict[str, Any]] = []
    open_set: list[dict[str, Any]] = []
    calibrations = {}
    for model_id, model_dir in dirs.items():
        check_unseen(model_dir, held.people)
        pair_part, open_part = measure(model_dir, held, args.cache)
        rows += pair_part
        open_set += open_part
        calibrations[model_id] = json.loads((model_dir / "manifest.json").read_text())["calibration"]["pair_set"]
    rows.sort(key=lambda r: (list(held.pairs).index(r["set"]), r["rule"], r["model"]))
    columns = ["set", "rule", "model", "pairs", "abstention", "error_decided", "far_decided", "miss_rate"]
    for row in rows:
        row["abstention_95"] = "[{:.3f}, {:.3f}]".format(*row["abstention_ci"])
        row["error_decided_95"] = "[{:.4f}, {:.4f}]".format(*row["error_decided_ci"])
    table = markdown_table(rows, [*columns[:5], "abstention_95", "error_decided", "error_decided_95", *columns[6:]])
    id_cols = [
        "model",
        "gallery_faces",
        "distractor_faces",
        "target_fpir",
        "fpir_observed",
        "non_mated_searches",
        "rank1_hit_rate",
        "rank1_hit_rate_stated",
        "mated_searches",
        "mated_uncertain",
    ]
    id_table = markdown_table(open_set, id_cols)
    write_json(
        "decisions",
        {"models": list(dirs), "calibration_sets": calibrations, "pairs": rows, "open_set": open_set},
    )
    names = ", ".join(f"{m} (calibrated on {c['name']})" for m, c in calibrations.items())
    text = f"Models: {names}.\n\n{table}\n{id_table}"
    (RESULTS / "decisions.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
