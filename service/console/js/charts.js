// The calibrated genuine and impostor score densities as an SVG, with thresholds and one pair's cosine on them.

import { s } from "./dom.js";
import { num } from "./format.js";

const W = 640;
const H = 240;
const M = { left: 40, right: 12, top: 30, bottom: 44 };

/** A step outline of densities over bin edges, closed on the baseline (for a filled area). */
function stepPath(edges, density, x, y) {
  let d = `M ${x(edges[0])} ${y(0)}`;
  density.forEach((v, i) => {
    d += ` L ${x(edges[i])} ${y(v)} L ${x(edges[i + 1])} ${y(v)}`;
  });
  return `${d} L ${x(edges[edges.length - 1])} ${y(0)} Z`;
}

function vline(xv, cls, label, top, testid) {
  return s(
    "g",
    { class: cls, "data-testid": testid },
    s("line", { x1: xv, x2: xv, y1: top, y2: H - M.bottom }),
    s("text", { x: xv, y: top - 4, "text-anchor": "middle" }, label),
  );
}

/**
 * histogram: {edges, genuine, impostor} (densities per bin); thresholds: {accept, reject}; cosine: the pair's score.
 * Returns an <svg> (or null when the model carries no histogram).
 */
export function scoreChart(histogram, thresholds, cosine) {
  if (!histogram || !histogram.edges || histogram.edges.length < 2) return null;
  const { edges, genuine, impostor } = histogram;
  const lo = edges[0];
  const hi = edges[edges.length - 1];
  const top = Math.max(...genuine, ...impostor) || 1;
  const x = (v) => M.left + ((Math.min(Math.max(v, lo), hi) - lo) / (hi - lo)) * (W - M.left - M.right);
  const y = (v) => H - M.bottom - (v / top) * (H - M.top - M.bottom);

  const svg = s("svg", { viewBox: `0 0 ${W} ${H}`, class: "chart-svg", role: "img", "aria-label": "score densities" });
  svg.append(
    s("path", { class: "impostor", d: stepPath(edges, impostor, x, y) }),
    s("path", { class: "genuine", d: stepPath(edges, genuine, x, y) }),
    s("line", { class: "axis", x1: M.left, x2: W - M.right, y1: y(0), y2: y(0) }),
  );
  for (let t = Math.ceil(lo * 4) / 4; t <= hi + 1e-9; t += 0.25) {
    svg.append(
      s("line", { class: "tick", x1: x(t), x2: x(t), y1: y(0), y2: y(0) + 4 }),
      s("text", { class: "tick-label", x: x(t), y: y(0) + 16, "text-anchor": "middle" }, num(t, 2)),
    );
  }
  svg.append(s("text", { class: "axis-label", x: W - M.right, y: H - 5, "text-anchor": "end" }, "cosine"));
  if (thresholds) {
    svg.append(
      vline(x(thresholds.reject), "reject-line", `reject ${num(thresholds.reject, 3)}`, M.top + 12, "chart-reject"),
      vline(x(thresholds.accept), "accept-line", `accept ${num(thresholds.accept, 3)}`, M.top, "chart-accept"),
    );
  }
  if (cosine !== null && cosine !== undefined) {
    const cx = x(cosine);
    svg.append(
      s(
        "g",
        { class: "score-marker", "data-testid": "verify-score-marker", "data-cosine": cosine },
        s("line", { x1: cx, x2: cx, y1: M.top - 6, y2: y(0) }),
        s("circle", { cx, cy: y(0), r: 5 }),
        s("text", { x: cx, y: M.top - 10, "text-anchor": "middle" }, `this pair ${num(cosine, 3)}`),
      ),
    );
  }
  svg.append(
    s("rect", { class: "genuine", x: M.left, y: H - 14, width: 12, height: 10 }),
    s("text", { class: "legend", x: M.left + 16, y: H - 5 }, "same person"),
    s("rect", { class: "impostor", x: M.left + 110, y: H - 14, width: 12, height: 10 }),
    s("text", { class: "legend", x: M.left + 126, y: H - 5 }, "different people"),
  );
  return svg;
}
