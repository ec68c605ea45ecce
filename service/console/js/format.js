// Numbers as people read them.

export function num(value, digits = 3) {
  return value === null || value === undefined ? "n/a" : Number(value).toFixed(digits);
}

/** A rate as a percentage; small rates keep two significant digits (0.0012 -> "0.12 %"). */
export function pct(rate, digits) {
  if (rate === null || rate === undefined) return "n/a";
  const p = rate * 100;
  if (digits === undefined) digits = p !== 0 && Math.abs(p) < 1 ? Math.max(2, 1 - Math.floor(Math.log10(Math.abs(p)))) : 1;
  return `${p.toFixed(digits)} %`;
}

/** A small rate in scientific form (1e-3 -> "1.0e-3"). */
export function sci(rate) {
  if (rate === null || rate === undefined) return "n/a";
  if (rate === 0) return "0";
  const [m, e] = Number(rate).toExponential(1).split("e");
  return `${m}e${Number(e)}`;
}

export function interval(pair, show = sci) {
  return pair ? `[${show(pair[0])}, ${show(pair[1])}]` : "n/a";
}

export function when(iso) {
  if (!iso) return "";
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? iso : d.toLocaleString();
}
