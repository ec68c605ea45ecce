// Building the page without ever parsing strings as HTML: every text goes in through textContent.

const SVG_NS = "http://www.w3.org/2000/svg";

/** An element with attributes and children; strings become text nodes, never markup. */
export function h(tag, attrs = {}, ...children) {
  return fill(document.createElement(tag), attrs, children);
}

/** An SVG element (same rules as h). */
export function s(tag, attrs = {}, ...children) {
  return fill(document.createElementNS(SVG_NS, tag), attrs, children);
}

function fill(el, attrs, children) {
  for (const [name, value] of Object.entries(attrs)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      el.addEventListener(name.slice(2), value);
    } else if (name === "style") {
      throw new Error("inline styles are not allowed by the console's Content-Security-Policy");
    } else {
      el.setAttribute(name, value === true ? "" : String(value));
    }
  }
  for (const child of children.flat()) {
    if (child === null || child === undefined || child === false) continue;
    el.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
  return el;
}

/** Replace every child of el. */
export function replace(el, ...children) {
  el.replaceChildren();
  for (const child of children.flat()) {
    if (child !== null && child !== undefined && child !== false) {
      el.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
  }
  return el;
}

/** The element with this id (it must exist). */
export function byId(id) {
  const el = document.getElementById(id);
  if (!el) throw new Error(`no element #${id}`);
  return el;
}

/** A definition list from [term, value] rows (rows with a null value are left out). */
export function facts(rows) {
  const out = [];
  for (const [term, value, testid] of rows) {
    if (value === null || value === undefined) continue;
    out.push(h("dt", {}, term), h("dd", { "data-testid": testid }, value));
  }
  return out;
}

/** Show an error (or clear it with null). */
export function showError(el, err) {
  if (!err) {
    el.textContent = "";
    return;
  }
  el.textContent = err.code ? `${err.code}: ${err.message}` : String(err.message || err);
}
