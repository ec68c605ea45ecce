"""Which settings of the three-way rule move its abstention, on the held-out pairs of bench/decisions.py.

The bundled model's calibration people go through the face path once; the rule is then refitted with one setting
changed at a time and measured, as bench/decisions.py measures the kappa-aware rule, on LFW dev fold 9, CFP-FF and
CFP-FP folds 4-5 and the dev low-resolution pairs:
  shipped          the recipe's settings, refitted here (the manifest's rule is the row "manifest")
  bands=N          N kappa bands instead of the manifest's number
  photos=N         at most N photos of a person instead of the recipe's cap
  confidence=C     intervals at level C: below the manifest's level the rule promises less, so these rows only
                   size the share of abstention the identity bootstrap costs; the service never uses them
  +LFW half k      half k of the evaluated LFW people joins the calibration people, and the rule is measured on
                   fold-9 pairs of the other half only, beside "shipped" on the same pairs: what about 220 more
                   calibration people of the LFW kind would buy

Usage: python bench/rule_levers.py   (writes bench/results/rule_levers.*)
    make bench-rule-levers
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from bench.common import RESULTS, add_data_arguments, markdown_table, write_json  # noqa: E402
from bench.decisions import embed, pair_rows, score_pairs  # noqa: E402
from bench.heldout import HeldOut, active_held_out  # noqa: E402
from facecore.decision_fit import RuleParams, all_pairs, fit_decision  # noqa: E402
from facecore.decision_records import DecisionRecord  # noqa: E402

logger = logging.getLogger("bench.rule_levers")
FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True)
class Faces:
    """Embedded photos: unit directions, kappa, person, the collection each came from, and the file."""

    mu: FloatArray
    kappa: FloatArray
    person: npt.NDArray[np.str_]
    source: npt.NDArray[np.str_]
    files: list[str]

    def take(self, idx: npt.NDArray[np.int64]) -> Faces:
        """The faces at idx."""
        return Faces(self.mu[idx], self.kappa[idx], self.person[idx], self.source[idx], [self.files[i] for i in idx])

    def plus(self, other: Faces) -> Faces:
        """These faces and the other's."""
        return Faces(
            np.concatenate([self.mu, other.mu]),
            np.concatenate([self.kappa, other.kappa]),
            np.concatenate([self.person, other.person]),
            np.concatenate([self.source, other.source]),
            self.files + other.files,
        )


def embed_faces(model_dir: Path, files: list[Path], person: list[str], source: list[str], cache: Path) -> Faces:
    """Every photo through the face path (photos without a face left out)."""
    from facecore.vmf import embedding_to_vmf

    raw = embed(model_dir, files, cache)
    found = np.isfinite(raw).all(axis=1)
    mu, kappa = embedding_to_vmf(raw[found])
    keep = np.nonzero(found)[0]
    return Faces(mu, kappa, np.asarray(person)[keep], np.asarray(source)[keep], [str(files[i].resolve()) for i in keep])


def capped(faces: Faces, roots: dict[str, Path], roles: dict[str, set[str]], cap: int | None) -> Faces:
    """The recipe's calibration photos at this cap: the same seeded draw per person as its calibration sample."""
    from training.recipes.splits import person_images

    wanted: set[str] = set()
    for key, names in roles.items():
        files, _ = person_images(roots[key], names, cap)
        wanted |= {str(f.resolve()) for f in files}
    return faces.take(np.array([i for i, f in enumerate(faces.files) if f in wanted], dtype=np.int64))


def fit(faces: Faces, params: RuleParams) -> DecisionRecord:
    """The three-way rule fitted on every pair among the faces (impostors within one collection)."""
    person = np.unique(faces.person, return_inverse=True)[1]
    return fit_decision("lever", all_pairs(faces.mu, faces.kappa, person, faces.source), params)


def measure(
    lever: str, rule: DecisionRecord, held: HeldOut, model_dir: Path, cache: Path, people: set[str] | None = None
) -> list[dict[str, Any]]:
    """The kappa-aware rule's abstention and errors per held-out pair set (only pairs of ``people`` when given)."""
    rows = []
    for name, pairs in held.pairs.items():
        if people is not None and not name.startswith("LFW"):
            continue
        s = score_pairs(model_dir, pairs, cache, people)
        row = pair_rows(name, s.scores, s.quality, s.same, s.people, rule)[0]  # the kappa-aware rule
        rows.append({"lever": lever, **row, "abstention_95": "[{:.3f}, {:.3f}]".format(*row["abstention_ci"])})
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_data_arguments(parser, REPO)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO)
    from facecore.manifest import load_manifest
    from training.recipes.default_model import CALIBRATION_PHOTOS_PER_PERSON, sources

    model_dir, record, held = active_held_out(args.models_dir, args.data, args.cache)
    manifest = load_manifest(model_dir)
    assert manifest.calibration is not None and manifest.calibration.decision_set is not None
    shipped_rule = manifest.calibration.decision_set.decision()
    params = RuleParams(
        target_far=shipped_rule.target_far,
        miss_bound=shipped_rule.miss_bound,
        n_bands=len(shipped_rule.bands),
        confidence=shipped_rule.confidence,
        min_pairs_factor=shipped_rule.min_pairs_factor,
        min_identities=shipped_rule.min_identities,
        n_boot=shipped_rule.n_boot,
    )
    splits: dict[str, list[str]] = record["splits"]  # type: ignore[assignment]
    roots = sources(args.data)
    roles = {
        "lfw_dev": set(splits["calibrate_lfw"]),
        "cfp_dev": set(splits["calibrate_cfp"]),
        "celeba_lowres": set(splits["calibrate_celeba"]),
    }
    from training.recipes.splits import person_images

    files: list[Path] = []
    person: list[str] = []
    origin: list[str] = []
    for key, names in [*roles.items(), ("lfw_dev", set(splits["evaluate_lfw"]))]:
        f, lab = person_images(roots[key], names)
        files, person, origin = files + f, person + lab, origin + [key] * len(f)
    everyone = embed_faces(model_dir, files, person, origin, args.cache)
    calibration = np.isin(everyone.person, list(set().union(*roles.values())))
    pool = everyone.take(np.nonzero(calibration)[0])
    shipped = capped(pool, roots, roles, CALIBRATION_PHOTOS_PER_PERSON)

    rows = measure("manifest", shipped_rule, held, model_dir, args.cache)
    rows += measure("shipped", fit(shipped, params), held, model_dir, args.cache)
    for n in (4, 5, 6):
        rows += measure(f"bands={n}", fit(shipped, replace(params, n_bands=n)), held, model_dir, args.cache)
    for cap in (30, 60):
        rows += measure(f"photos={cap}", fit(capped(pool, roots, roles, cap), params), held, model_dir, args.cache)
    for level in (0.9, 0.8, 0.5):
        rule = fit(shipped, replace(params, confidence=level))
        rows += measure(f"confidence={level}", rule, held, model_dir, args.cache)
    evaluated = sorted(splits["evaluate_lfw"])
    order = [str(p) for p in np.random.default_rng(0).permutation(evaluated)]
    halves = [set(order[: len(order) // 2]), set(order[len(order) // 2 :])]
    shipped_rule_here = fit(shipped, params)
    for k, joined in enumerate(halves):
        other = halves[1 - k]
        extra = everyone.take(np.nonzero(np.isin(everyone.person, list(joined)))[0])
        extra = capped(extra, roots, {"lfw_dev": joined}, CALIBRATION_PHOTOS_PER_PERSON)
        grown = shipped.plus(extra)
        rows += measure(f"shipped, LFW half {1 - k}", shipped_rule_here, held, model_dir, args.cache, other)
        rows += measure(f"+LFW half {k}, LFW half {1 - k}", fit(grown, params), held, model_dir, args.cache, other)
    columns = ["lever", "set", "pairs", "abstention", "abstention_95", "error_decided", "miss_rate"]
    table = markdown_table(rows, columns)
    write_json("rule_levers", {"model": model_dir.name, "params": params.__dict__, "rows": rows})
    text = f"Model: {model_dir.name}; kappa-aware rule, refitted with one setting changed.\n\n{table}"
    (RESULTS / "rule_levers.md").write_text(text)
    sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
