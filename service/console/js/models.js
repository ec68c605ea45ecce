// Models (admin): the serving model, its operating points and bands, its calibration report, and hot switches.

import { api } from "./api.js";
import { byId, facts, h, replace, showError } from "./dom.js";
import { interval, num, pct, sci, when } from "./format.js";

const POLL_MS = 250;
const plotUrls = [];

function table(head, rows, testid) {
  return h(
    "table",
    { class: "grid", "data-testid": testid },
    h("thead", {}, h("tr", {}, head.map((c) => h("th", {}, c)))),
    h("tbody", {}, rows.map((r) => h("tr", {}, r.map((c) => h("td", {}, c))))),
  );
}

function bandRange(b) {
  const lo = b.quality_low === null ? "−∞" : num(b.quality_low, 2);
  const hi = b.quality_high === null ? "∞" : num(b.quality_high, 2);
  return `[${lo}, ${hi})`;
}

function ruleSection(rule) {
  return h(
    "div",
    { class: "rule" },
    h(
      "h3",
      {},
      `${rule.name}: FAR ${sci(rule.target_far)}, miss bound ${pct(rule.miss_bound)}, ` +
        `Cllr ${num(rule.cllr, 3)} (one band: ${num(rule.cllr_overall, 3)})`,
    ),
    table(
      ["band", "pair κ", "accept", "reject", "FAR [interval]", "miss rate", "genuine / impostor pairs", "resolved"],
      [rule.overall, ...rule.bands].map((b) => [
        b.name,
        bandRange(b),
        num(b.accept_threshold, 4),
        num(b.reject_threshold, 4),
        `${sci(b.far)} ${interval(b.far_interval)}`,
        pct(b.miss_rate),
        `${b.n_genuine} / ${b.n_impostor}`,
        b.resolved ? "yes" : "no: the overall band stands in",
      ]),
      "model-bands",
    ),
  );
}

function activeSection(m) {
  const out = [
    h("h2", { "data-testid": "active-model-id" }, `Serving ${m.model_id}`),
    h(
      "dl",
      { class: "facts" },
      facts([
        ["backbone / loss", `${m.backbone} / ${m.loss}`],
        ["embedding dimension", m.embedding_dim],
        ["created", when(m.created)],
        ["calibration", m.calibration ? `${m.calibration.source}: ${m.calibration.name}` : "none"],
        ["κ trained as a certainty", m.kappa_trained === null ? null : m.kappa_trained ? "yes" : "no"],
        ["enrollment rule", m.enroll_rule],
        [
          "detector",
          m.detector
            ? `${m.detector.in_use.kind}${m.detector.overridden ? " (overridden: the stated rates may not hold)" : ""}`
            : null,
        ],
      ]),
    ),
  ];
  if (m.operating_points.length) {
    out.push(
      h("h3", {}, "Operating points"),
      table(
        ["name", "target FAR", "threshold", "FAR", "FRR", "genuine / impostor pairs"],
        m.operating_points.map((p) => [
          `${p.name}${p.name === m.default_operating_point ? " (default)" : ""}`,
          sci(p.target_far),
          num(p.threshold, 4),
          sci(p.far),
          pct(p.frr),
          `${p.n_genuine} / ${p.n_impostor}`,
        ]),
        "operating-points",
      ),
    );
  }
  for (const rule of m.decisions) out.push(ruleSection(rule));
  if (m.identification) {
    const ident = m.identification;
    out.push(
      h("h3", {}, `Identification: FPIR ${pct(ident.target_fpir)} (up to ${ident.max_gallery_size} faces)`),
      table(
        ["gallery faces", "threshold", "FPIR", "enrolled found first"],
        ident.points.map((p) => [p.gallery_size, num(p.threshold, 4), pct(p.fpir), pct(p.rank1_hit_rate)]),
        "identification-points",
      ),
    );
  }
  return out;
}

async function showPlots(modelId) {
  for (const url of plotUrls.splice(0)) URL.revokeObjectURL(url);
  const report = await api.report(modelId);
  const figures = [];
  for (const plot of report.plots) {
    const url = URL.createObjectURL(await api.reportPlot(modelId, plot.name));
    plotUrls.push(url);
    figures.push(
      h(
        "figure",
        { class: "plot", "data-testid": "report-plot" },
        h("img", { src: url, alt: plot.name }),
        h("figcaption", {}, plot.name),
      ),
    );
  }
  replace(byId("models-plots"), figures.length ? figures : h("p", { class: "hint" }, "this model has no report"));
}

function log(text) {
  byId("switch-log").append(h("li", {}, text));
}

async function follow(session, job) {
  const progress = byId("switch-progress");
  const status = byId("switch-status");
  progress.hidden = false;
  let last = "";
  for (;;) {
    const total = job.faces_total;
    if (total > 0) {
      progress.max = total;
      progress.value = job.faces_done;
    } else {
      progress.removeAttribute("value"); // indeterminate while the model loads
    }
    const text =
      job.status === "running"
        ? total > 0
          ? `${job.action} ${job.target_model_id}: re-embedding ${job.faces_done} / ${total} faces`
          : `${job.action} ${job.target_model_id}: loading the model`
        : job.status === "succeeded"
          ? `${job.action} ${job.target_model_id}: succeeded, now serving ${job.target_model_id}`
          : `${job.action} ${job.target_model_id}: failed, ${job.error.code}: ${job.error.message}`;
    status.textContent = text;
    status.dataset.status = job.status;
    if (text !== last) log(text);
    last = text;
    if (job.status !== "running") break;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
    job = await api.job(job.job_id);
  }
  if (job.status === "succeeded") {
    progress.max = 1;
    progress.value = 1;
  }
  session.forgetModel();
  await showModels(session);
}

async function startSwitch(session, start) {
  const error = byId("models-error");
  showError(error, null);
  replace(byId("switch-log"));
  // A new switch starts with no status, so nothing reads the last switch's outcome as this one's.
  const status = byId("switch-status");
  status.textContent = "";
  delete status.dataset.status;
  const buttons = document.querySelectorAll("#page-models button");
  for (const b of buttons) b.disabled = true;
  try {
    await follow(session, await start());
  } catch (err) {
    showError(error, err);
  } finally {
    for (const b of buttons) b.disabled = false;
  }
}

function modelRow(session, m) {
  const activate = h(
    "button",
    { type: "button", "data-testid": "model-activate", "data-model-id": m.model_id },
    "Activate",
  );
  activate.hidden = m.serving;
  activate.addEventListener("click", () => startSwitch(session, () => api.activate(m.model_id)));
  return h(
    "tr",
    { "data-testid": "model-row", "data-model-id": m.model_id, "data-serving": m.serving ? "yes" : "no" },
    h("td", {}, m.model_id, m.serving ? " (serving)" : ""),
    h("td", {}, `${m.backbone} / ${m.loss}`),
    h("td", {}, m.embedding_dim),
    h("td", {}, m.calibrated ? "yes" : "no"),
    h("td", {}, when(m.created)),
    h("td", {}, activate),
  );
}

export async function showModels(session) {
  const error = byId("models-error");
  try {
    const [active, all] = await Promise.all([session.activeModel(true), api.models()]);
    replace(byId("models-active"), activeSection(active));
    replace(
      byId("models-list"),
      all.models.map((m) => modelRow(session, m)),
    );
    await showPlots(active.model_id);
  } catch (err) {
    showError(error, err);
  }
}

export function initModels(session) {
  byId("model-rollback").addEventListener("click", () => startSwitch(session, () => api.rollback()));
}
