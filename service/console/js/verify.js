// Verify: two photos, or a photo and an enrolled identity, and the decision with the calibration behind it.

import { api } from "./api.js";
import { scoreChart } from "./charts.js";
import { byId, facts, h, replace, showError } from "./dom.js";
import { interval, num, pct, sci } from "./format.js";
import { faceCaption, faceFigure, PhotoUrls, wireDropZone } from "./photos.js";

const photos = new PhotoUrls();

/** One sentence on what the decision promises. */
export function explainVerify(r) {
  const band = r.band;
  if (r.decision === "match") {
    return (
      `Same person. Among pairs of different people of this quality, at most ${sci(band.target_far)} score ` +
      `this high (measured ${sci(band.far)} on the calibration pairs).`
    );
  }
  if (r.decision === "non_match") {
    return (
      `Different people. Among pairs of one person of this quality, at most ${pct(band.miss_bound)} score ` +
      `this low.`
    );
  }
  return `Uncertain: ${r.reason || "the cosine lies between the two thresholds."}`;
}

function bandText(band) {
  const lo = band.quality_low === null ? "" : `κ ≥ ${num(band.quality_low, 2)}`;
  const hi = band.quality_high === null ? "" : `κ < ${num(band.quality_high, 2)}`;
  const range = [lo, hi].filter(Boolean).join(", ") || "every pair";
  return `${band.name} (${range})${band.fallback ? ", standing in for a band too small to resolve" : ""}`;
}

export function verifyFacts(r) {
  const band = r.band;
  return facts([
    ["cosine", num(r.cosine, 4), "fact-cosine"],
    ["accept at or above", num(r.thresholds.accept, 4), "fact-accept"],
    ["reject below", num(r.thresholds.reject, 4), "fact-reject"],
    ["pair quality (smaller κ)", num(r.pair_quality, 2), "fact-quality"],
    ["quality band", bandText(band), "fact-band"],
    ["band FAR (target)", `${sci(band.far)} ${interval(band.far_interval)} (target ${sci(band.target_far)})`, "fact-far"],
    ["band miss bound", `${pct(band.miss_bound)} (measured ${pct(band.miss_rate)})`, "fact-miss"],
    ["log10 likelihood ratio", num(r.log10_lr, 2), "fact-llr"],
    ["why uncertain", r.reason, "fact-reason"],
    ["rule", `${r.operating_point.name} · ${band.n_genuine} genuine / ${band.n_impostor} impostor pairs`, "fact-rule"],
    ["calibration", `${r.calibration.source}: ${r.calibration.name}`, "fact-calibration"],
    ["expected cosine", num(r.expected_cosine, 4), "fact-expected"],
    ["model", r.model_id, "fact-model"],
  ]);
}

async function identityCard(r) {
  const ref = r.identity;
  return h(
    "figure",
    { class: "face identity-card", "data-testid": "face-B" },
    h("p", { class: "identity-name" }, ref.name),
    h(
      "p",
      { class: "hint" },
      `best of ${ref.faces_compared} enrolled face(s) (face ${ref.best_face_id}); ` +
        `FAR of the best of n at most ${sci(ref.far_bound)}`,
    ),
    faceCaption(r.faces[1], "B"),
  );
}

async function render(session, r, fileA, fileB) {
  photos.release();
  const a = await faceFigure(photos.of(fileA), r.faces[0], "A");
  const b = r.identity ? await identityCard(r) : await faceFigure(photos.of(fileB), r.faces[1], "B");
  replace(byId("verify-faces"), a, b);
  const decision = byId("verify-decision");
  decision.textContent = r.decision;
  decision.dataset.decision = r.decision;
  byId("verify-explain").textContent = explainVerify(r);
  replace(byId("verify-facts"), verifyFacts(r));
  const model = await session.activeModel();
  const chart = scoreChart(model && model.score_histogram, r.thresholds, r.cosine);
  replace(byId("verify-chart"), chart || h("p", { class: "hint" }, "this model carries no score histogram"));
  byId("verify-out").hidden = false;
}

async function loadIdentities() {
  const select = byId("verify-identity");
  const chosen = select.value;
  const page = await api.identities({ limit: 500 });
  const options = page.items.map((it) => h("option", { value: it.id }, `${it.name} (${it.faces.length} faces)`));
  replace(select, h("option", { value: "" }, "(compare with photo B)"), options);
  select.value = page.items.some((it) => it.id === chosen) ? chosen : "";
}

export function initVerify(session) {
  const form = byId("verify-form");
  const inputA = byId("verify-image-a");
  const inputB = byId("verify-image-b");
  wireDropZone(byId("verify-drop-a"), inputA);
  wireDropZone(byId("verify-drop-b"), inputB);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = byId("verify-error");
    showError(error, null);
    const identity = byId("verify-identity").value;
    const fileA = inputA.files[0];
    const fileB = inputB.files[0];
    if (!identity && !fileB) {
      showError(error, { code: "validation_error", message: "choose photo B or an enrolled identity" });
      return;
    }
    const body = new FormData();
    body.append("image_a", fileA);
    if (identity) body.append("identity_id", identity);
    else body.append("image_b", fileB);
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    byId("verify-out").hidden = true;
    byId("verify-decision").textContent = "";
    try {
      await render(session, await api.verify(body), fileA, fileB);
    } catch (err) {
      showError(error, err);
    } finally {
      submit.disabled = false;
    }
  });
}

export async function showVerify() {
  try {
    await loadIdentities();
  } catch (err) {
    showError(byId("verify-error"), err);
  }
}
