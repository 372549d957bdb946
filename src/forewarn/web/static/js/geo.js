// Geometry for display only (detection and every figure shown come from the service): spherical distances and
// circles on WGS84 lon/lat degrees, and the units and times the page prints. The map projection (Web Mercator)
// is Leaflet's, in situation-map.js.

export const EARTH_RADIUS_M = 6371008.8; // mean Earth radius (display only)
export const FOOT_M = 0.3048;
const DEG = Math.PI / 180;
/** The point ``distance_m`` metres from (lon, lat) along ``azimuth_deg`` (sphere; display only). */
export function destination(lon, lat, azimuthDeg, distanceM) {
  const d = distanceM / EARTH_RADIUS_M;
  const az = azimuthDeg * DEG;
  const p1 = lat * DEG;
  const l1 = lon * DEG;
  const p2 = Math.asin(Math.sin(p1) * Math.cos(d) + Math.cos(p1) * Math.sin(d) * Math.cos(az));
  const l2 = l1 + Math.atan2(Math.sin(az) * Math.sin(d) * Math.cos(p1), Math.cos(d) - Math.sin(p1) * Math.sin(p2));
  return [l2 / DEG, p2 / DEG];
}

/** Great-circle distance in metres (sphere; display only). */
export function distance(a, b) {
  const [l1, p1] = [a[0] * DEG, a[1] * DEG];
  const [l2, p2] = [b[0] * DEG, b[1] * DEG];
  const h = Math.sin((p2 - p1) / 2) ** 2 + Math.cos(p1) * Math.cos(p2) * Math.sin((l2 - l1) / 2) ** 2;
  return 2 * EARTH_RADIUS_M * Math.asin(Math.min(1, Math.sqrt(h)));
}

export function circleRing(center, radiusM, n = 72) {
  const ring = [];
  for (let i = 0; i < n; i++) ring.push(destination(center[0], center[1], (360 * i) / n, radiusM));
  return ring;
}

/** Points of a footprint (for fitting the view): polygon vertices, circle ring, corridor path widened by its half-width. */
export function footprintPoints(fp) {
  if (fp.kind === "polygon") return fp.coordinates;
  if (fp.kind === "circle") return circleRing(fp.center, fp.radius_m, 16);
  return fp.path.flatMap((p) => [0, 90, 180, 270].map((az) => destination(p[0], p[1], az, fp.half_width_m)));
}

// ---------------------------------------------------------------------------------------------- formatting
export const pad = (n) => String(n).padStart(2, "0");

/** "2015-11-17 05:30Z" */
export function fmtTime(iso) {
  if (!iso) return "—";
  const d = new Date(iso);
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}Z`;
}

export function fmtClock(iso) {
  const d = new Date(iso);
  return `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}:${pad(d.getUTCSeconds())}Z`;
}

/** A duration in seconds as "2 h 05 min" (negative: "−0 h 10 min"). */
export function fmtLead(seconds) {
  if (seconds === null || seconds === undefined) return "—";
  const sign = seconds < 0 ? "−" : "";
  const total = Math.floor(Math.abs(seconds) / 60);
  return `${sign}${Math.floor(total / 60)} h ${pad(total % 60)} min`;
}

/** An altitude band in metres with feet, e.g. "5,486–6,706 m (18,000–22,000 ft)". */
export function fmtBand(lowerM, upperM) {
  const m = (v) => Math.round(v).toLocaleString("en-GB");
  const ft = (v) => (Math.round(v / FOOT_M / 10) * 10).toLocaleString("en-GB");
  return `${m(lowerM)}–${m(upperM)} m (${ft(lowerM)}–${ft(upperM)} ft)`;
}

export function fmtKm(m) {
  return m >= 10000 ? `${Math.round(m / 1000)} km` : `${(m / 1000).toFixed(1)} km`;
}

export function dayKey(date) {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())}`;
}

/** Escape text for HTML. */
export function esc(value) {
  return String(value ?? "").replace(/[&<>"']/g, (c) => ({ "&": "&amp;", "<": "&lt;", ">": "&gt;", '"': "&quot;", "'": "&#39;" }[c]));
}
