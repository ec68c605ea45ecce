// Identify: one photo against the gallery; ranked candidates, each with its decision, and `unknown` said plainly.

import { api } from "./api.js";
import { byId, facts, h, replace, showError } from "./dom.js";
import { num, pct } from "./format.js";
import { faceFigure, PhotoUrls, wireDropZone } from "./photos.js";

const photos = new PhotoUrls();

export function explainSearch(r) {
  const first = r.hits[0];
  if (r.result === "match") {
    return (
      `This is ${first.name}. Searches by people who are not enrolled name someone at most ` +
      `${pct(r.fpir.target)} of the time in a gallery of this size.`
    );
  }
  if (r.result === "unknown") {
    if (r.gallery_faces === 0) return "Unknown: the gallery is empty.";
    return (
      `Unknown: nobody enrolled is this person. No enrolled face reaches ${num(r.thresholds.reject, 4)}; ` +
      `an enrolled person's own face scores that low at most ${pct(r.band.miss_bound)} of the time.`
    );
  }
  return `Uncertain: ${r.reason || "the best candidate lies between the two thresholds."}`;
}

function hitRow(hit, rank) {
  return h(
    "tr",
    { "data-testid": "identify-hit", "data-decision": hit.decision },
    h("td", {}, rank),
    h("td", { "data-testid": "hit-name" }, hit.name),
    h("td", {}, num(hit.cosine, 4)),
    h("td", { class: `decision-cell ${hit.decision}`, "data-testid": "hit-decision" }, hit.decision),
    h("td", { class: "mono" }, hit.identity_id),
  );
}

async function render(r, file) {
  photos.release();
  replace(byId("identify-face"), await faceFigure(photos.of(file), r.query_face, "probe"));
  const result = byId("identify-result");
  result.textContent = r.result;
  result.dataset.decision = r.result;
  byId("identify-explain").textContent = explainSearch(r);
  replace(
    byId("identify-facts"),
    facts([
      ["accept at or above", num(r.thresholds.accept, 4), "search-accept"],
      ["reject below", num(r.thresholds.reject, 4), "search-reject"],
      ["FPIR target (measured)", `${pct(r.fpir.target)} (${pct(r.fpir.fpir)})`, "search-fpir"],
      [
        "gallery",
        `${r.gallery_faces} face(s); thresholds of a calibrated gallery of ${r.fpir.calibrated_gallery_size}` +
          (r.fpir.resolvable ? "" : " (larger than the calibration can represent)"),
        "search-gallery",
      ],
      ["enrolled people found first", pct(r.rank1_hit_rate), "search-rank1"],
      ["why uncertain", r.reason, "search-reason"],
      ["calibration", `${r.calibration.source}: ${r.calibration.name}`, "search-calibration"],
      ["model", r.model_id, "search-model"],
    ]),
  );
  const rows = r.hits.map((hit, i) => hitRow(hit, i + 1));
  replace(
    byId("identify-hits"),
    rows.length ? rows : h("tr", {}, h("td", { colspan: 5, class: "hint" }, "no enrolled faces to compare with")),
  );
  byId("identify-out").hidden = false;
}

export function initIdentify() {
  const form = byId("identify-form");
  const input = byId("identify-image");
  wireDropZone(byId("identify-drop"), input);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const error = byId("identify-error");
    showError(error, null);
    const body = new FormData();
    body.append("image", input.files[0]);
    body.append("k", byId("identify-k").value || "5");
    const submit = form.querySelector("button[type=submit]");
    submit.disabled = true;
    byId("identify-out").hidden = true;
    byId("identify-result").textContent = "";
    try {
      await render(await api.search(body), input.files[0]);
    } catch (err) {
      showError(error, err);
    } finally {
      submit.disabled = false;
    }
  });
}
