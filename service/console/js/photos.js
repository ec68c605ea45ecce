// Photos a user picks or drops: the drop zones, and each photo drawn with its detected box and five landmarks.

import { h, s } from "./dom.js";
import { num, pct } from "./format.js";

/** Let a drop zone feed its file input; several=true adds dropped files to those already chosen. */
export function wireDropZone(zone, input, { several = false } = {}) {
  zone.addEventListener("dragover", (event) => {
    event.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (event) => {
    event.preventDefault();
    zone.classList.remove("over");
    const dropped = [...event.dataTransfer.files].filter((f) => f.type.startsWith("image/") || f.type === "");
    if (!dropped.length) return;
    const chosen = new DataTransfer();
    for (const f of several ? [...input.files, ...dropped] : dropped.slice(0, 1)) chosen.items.add(f);
    input.files = chosen.files;
    input.dispatchEvent(new Event("change", { bubbles: true }));
  });
}

/** Blob URLs of the photos on show, released when a page shows new ones. */
export class PhotoUrls {
  constructor() {
    this.urls = [];
  }

  of(file) {
    const url = URL.createObjectURL(file);
    this.urls.push(url);
    return url;
  }

  release() {
    for (const url of this.urls) URL.revokeObjectURL(url);
    this.urls = [];
  }
}

/** Natural width and height of an image URL. */
export function imageSize(url) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve({ width: img.naturalWidth, height: img.naturalHeight });
    img.onerror = () => reject(new Error("the browser cannot show this image"));
    img.src = url;
  });
}

/**
 * A photo with the face the service kept: its box and five landmarks over the image, its kappa and quality below.
 * face: the API's FaceQuality (box and landmarks in source pixels); side: a label such as "A".
 */
export async function faceFigure(url, face, side) {
  const { width, height } = await imageSize(url);
  const stroke = Math.max(2, Math.round(Math.max(width, height) / 200));
  const svg = s(
    "svg",
    { viewBox: `0 0 ${width} ${height}`, class: "photo", role: "img", "aria-label": `photo ${side}` },
    s("image", { href: url, x: 0, y: 0, width, height }),
  );
  if (face && face.box) {
    const [x1, y1, x2, y2] = face.box;
    svg.append(
      s("rect", {
        class: "face-box",
        "data-testid": `face-box-${side}`,
        x: x1,
        y: y1,
        width: x2 - x1,
        height: y2 - y1,
        "stroke-width": stroke,
      }),
    );
  }
  for (const [x, y] of (face && face.landmarks) || []) {
    svg.append(s("circle", { class: "landmark", "data-testid": `landmark-${side}`, cx: x, cy: y, r: stroke * 1.5 }));
  }
  return h("figure", { class: "face", "data-testid": `face-${side}` }, svg, faceCaption(face, side));
}

/** kappa, quality percentile and detector score of a face, as a caption. */
export function faceCaption(face, side) {
  if (!face) return h("figcaption", {}, side);
  return h(
    "figcaption",
    {},
    h("span", { class: "side" }, side),
    " κ ",
    h("b", { "data-testid": `kappa-${side}` }, num(face.kappa, 2)),
    " · quality ",
    h("b", { "data-testid": `quality-${side}` }, face.quality_pct === null ? "n/a" : pct(face.quality_pct / 100, 0)),
    face.det_score === null || face.det_score === undefined ? "" : ` · detector ${num(face.det_score, 2)}`,
  );
}
