// Calibration (admin): do the stated rates hold on the enrolled gallery? Adopt a gallery calibration, or revert.

import { api } from "./api.js";
import { byId, facts, h, replace, showError } from "./dom.js";
import { interval, num, pct, sci } from "./format.js";

function verdict(holds) {
  if (holds === null || holds === undefined) return "not measurable (too few pairs)";
  return holds ? "holds" : "does not hold";
}

const BAND_COLUMNS = ["band", "accept", "target FAR", "observed FAR", "", "reject", "miss bound", "observed miss", "", "pairs"];

function bandTable(rows) {
  return h(
    "table",
    { class: "grid" },
    h("thead", {}, h("tr", {}, BAND_COLUMNS.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows),
  );
}

function renderReport(r) {
  const rows = r.bands.map((b) =>
    h(
      "tr",
      { "data-testid": "calibration-band" },
      h("td", {}, b.band),
      h("td", {}, num(b.accept_threshold, 4)),
      h("td", {}, `${sci(b.target_far)}`),
      h("td", {}, b.observed_far === null ? "n/a" : `${sci(b.observed_far)} ${interval(b.far_interval)}`),
      h("td", { class: `holds-${b.far_holds}` }, verdict(b.far_holds)),
      h("td", {}, num(b.reject_threshold, 4)),
      h("td", {}, pct(b.miss_bound)),
      h("td", {}, b.observed_miss === null ? "n/a" : `${pct(b.observed_miss)} ${interval(b.miss_interval, pct)}`),
      h("td", { class: `holds-${b.miss_holds}` }, verdict(b.miss_holds)),
      h("td", {}, `${b.n_genuine} / ${b.n_impostor} (${b.n_identities} people)`),
    ),
  );
  replace(
    byId("calibration-report"),
    h(
      "p",
      { class: "explain", "data-testid": "calibration-holds" },
      r.holds === null
        ? "Nothing could be measured yet: enroll more people, several photos each."
        : r.holds
          ? "The stated rates hold on this gallery."
          : "Some stated rates do not hold on this gallery: consider adopting a gallery calibration.",
    ),
    h(
      "dl",
      { class: "facts" },
      facts([
        ["checked calibration", `${r.calibration_source}: ${r.calibration_id}`, "calibration-id"],
        ["rule", r.rule],
        ["people / faces", `${r.sample.identities} / ${r.sample.faces}`, "calibration-sample"],
        ["genuine / impostor pairs", `${r.sample.genuine_pairs} / ${r.sample.impostor_pairs}`],
      ]),
    ),
    r.bands.length === 0 ? null : bandTable(rows),
  );
}

async function run(session, action) {
  const error = byId("calibration-error");
  const status = byId("calibration-status");
  showError(error, null);
  status.textContent = "";
  try {
    if (action === "adopt") {
      const r = await api.adoptCalibration();
      status.textContent = `Adopted gallery calibration ${r.calibration_id} (identification from the ${r.identification_from}).`;
      session.forgetModel();
      renderReport(r.report);
      return;
    }
    if (action === "revert") {
      const r = await api.revertCalibration();
      status.textContent = r.reverted
        ? "Decisions are back on the model's own calibration."
        : "Nothing to revert: decisions already use the model's own calibration.";
      session.forgetModel();
    }
    renderReport(await api.galleryReport());
  } catch (err) {
    showError(error, err);
  }
}

export function initCalibration(session) {
  byId("calibration-refresh").addEventListener("click", () => run(session, "measure"));
  byId("calibration-adopt").addEventListener("click", () => run(session, "adopt"));
  byId("calibration-revert").addEventListener("click", () => run(session, "revert"));
}

export function showCalibration(session) {
  return run(session, "measure");
}
