// The map: an SVG in Web Mercator (see geo.js), pan by dragging, zoom with the wheel or the buttons.
// Everything is drawn in projected units inside one viewBox; strokes that must stay a few pixels wide use
// vector-effect="non-scaling-stroke", and markers and labels are resized to the zoom after every change.

import { circleRing, metresToUnits, project, unproject } from "./geo.js";

const NICE = [1, 2, 5];

const NS = "http://www.w3.org/2000/svg";

export function el(name, attrs = {}, parent = null) {
  const node = document.createElementNS(NS, name);
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
  if (parent) parent.appendChild(node);
  return node;
}

function ringPath(points, close = true) {
  const parts = points.map((p, i) => {
    const [x, y] = project(p[0], p[1]);
    return `${i ? "L" : "M"}${x.toFixed(4)},${y.toFixed(4)}`;
  });
  return parts.join("") + (close ? "Z" : "");
}

function geometryPath(geom) {
  const polys = geom.type === "Polygon" ? [geom.coordinates] : geom.type === "MultiPolygon" ? geom.coordinates : [];
  const lines = geom.type === "LineString" ? [geom.coordinates] : geom.type === "MultiLineString" ? geom.coordinates : [];
  let d = "";
  for (const poly of polys) for (const ring of poly) d += ringPath(ring, true);
  for (const line of lines) d += ringPath(line, false);
  return d;
}

export const LAYERS = ["basemap", "graticule", "sites", "others", "own", "conflicts", "alerts", "tracks", "draft"];

export class MapView {
  constructor(svg) {
    this.svg = svg;
    this.cx = 40; // view centre, projected units
    this.cy = project(40, 35)[1];
    this.scale = 40; // pixels per projected unit
    this.layers = {};
    this.hidden = new Set();
    for (const name of LAYERS) this.layers[name] = el("g", { id: `layer-${name}`, class: `layer ${name}` }, svg);
    // labels live in a screen-space overlay (pixels): text scaled by a viewBox renders slowly and blurred
    this.overlay = el("svg", { class: "map-overlay", "aria-hidden": "true" });
    svg.after(this.overlay);
    this.layers.labels = el("g", { id: "layer-labels", class: "layer labels" }, this.overlay);
    this.scalebar = document.createElement("div");
    this.scalebar.className = "scalebar";
    this.overlay.after(this.scalebar);
    this.onClick = null; // (lonlat, event) => void, for clicks that are not drags
    this.onMove = null;
    this._wire();
    new ResizeObserver(() => this.update()).observe(svg);
  }

  get width() { return this.svg.clientWidth || 800; }
  get height() { return this.svg.clientHeight || 600; }

  update() {
    const w = this.width / this.scale;
    const h = this.height / this.scale;
    this.svg.setAttribute("viewBox", `${this.cx - w / 2} ${this.cy - h / 2} ${w} ${h}`);
    const px = 1 / this.scale;
    for (const node of this.svg.querySelectorAll("[data-px-r]")) node.setAttribute("r", node.dataset.pxR * px);
    const [hw, hh] = [this.width / 2, this.height / 2];
    for (const node of this.layers.labels.children) {
      node.setAttribute("x", hw + (node.dataset.x - this.cx) * this.scale);
      node.setAttribute("y", hh + (node.dataset.y - this.cy) * this.scale);
    }
    this._scalebar();
    // hide a label that would overlap one drawn later (alerts and operations are drawn after sites)
    const kept = [];
    for (const node of [...this.layers.labels.children].reverse()) {
      if (node.style.display === "none") continue;
      node.removeAttribute("visibility");
      const b = node.getBBox();
      if (kept.some((k) => b.x < k.x + k.width && k.x < b.x + b.width && b.y < k.y + k.height && k.y < b.y + b.height)) {
        node.setAttribute("visibility", "hidden");
      } else {
        kept.push(b);
      }
    }
    for (const node of this.svg.querySelectorAll("[data-px-size]")) {
      const s = node.dataset.pxSize * px;
      const [x, y] = [Number(node.dataset.x), Number(node.dataset.y)];
      node.setAttribute("d", `M${x},${y - s}L${x + s * 0.9},${y + s * 0.7}L${x - s * 0.9},${y + s * 0.7}Z`);
    }
  }

  /** A scale bar of a round length near 120 px, true at the latitude of the view's centre. */
  _scalebar() {
    const lat = unproject(this.cx, this.cy)[1];
    const metresPerPx = 1 / (metresToUnits(1, lat) * this.scale);
    const target = metresPerPx * 120;
    const pow = 10 ** Math.floor(Math.log10(target));
    const nice = NICE.map((n) => n * pow).filter((v) => v <= target).pop() || pow;
    this.scalebar.style.width = `${nice / metresPerPx}px`;
    this.scalebar.textContent = nice >= 1000 ? `${nice / 1000} km` : `${nice} m`;
  }

  /** Client (page) coordinates of a WGS84 point: used by tests to click on the map. */
  screenPoint(lon, lat) {
    const [x, y] = project(lon, lat);
    const r = this.svg.getBoundingClientRect();
    return { x: r.left + r.width / 2 + (x - this.cx) * this.scale, y: r.top + r.height / 2 + (y - this.cy) * this.scale };
  }

  lonLatAt(clientX, clientY) {
    const r = this.svg.getBoundingClientRect();
    return unproject(this.cx + (clientX - r.left - r.width / 2) / this.scale,
                     this.cy + (clientY - r.top - r.height / 2) / this.scale);
  }

  zoomBy(factor, clientX = null, clientY = null) {
    const r = this.svg.getBoundingClientRect();
    const px = clientX ?? r.left + r.width / 2;
    const py = clientY ?? r.top + r.height / 2;
    const before = [this.cx + (px - r.left - r.width / 2) / this.scale, this.cy + (py - r.top - r.height / 2) / this.scale];
    this.scale = Math.max(0.5, Math.min(20000, this.scale * factor));
    this.cx = before[0] - (px - r.left - r.width / 2) / this.scale;
    this.cy = before[1] - (py - r.top - r.height / 2) / this.scale;
    this.update();
  }

  /** Fit the view to WGS84 points (with a margin). */
  fit(points) {
    if (!points.length) return;
    const xy = points.map((p) => project(p[0], p[1]));
    const xs = xy.map((p) => p[0]);
    const ys = xy.map((p) => p[1]);
    const [x0, x1, y0, y1] = [Math.min(...xs), Math.max(...xs), Math.min(...ys), Math.max(...ys)];
    this.cx = (x0 + x1) / 2;
    this.cy = (y0 + y1) / 2;
    this.scale = Math.min(this.width / Math.max(x1 - x0, 0.05), this.height / Math.max(y1 - y0, 0.05)) * 0.85;
    this.update();
  }

  _wire() {
    let drag = null;
    this.svg.addEventListener("pointerdown", (e) => {
      drag = { x: e.clientX, y: e.clientY, cx: this.cx, cy: this.cy, moved: false };
      this.svg.setPointerCapture(e.pointerId);
    });
    this.svg.addEventListener("pointermove", (e) => {
      if (this.onMove) this.onMove(this.lonLatAt(e.clientX, e.clientY));
      if (!drag) return;
      const dx = e.clientX - drag.x;
      const dy = e.clientY - drag.y;
      if (Math.abs(dx) + Math.abs(dy) > 4) drag.moved = true;
      if (drag.moved) {
        this.cx = drag.cx - dx / this.scale;
        this.cy = drag.cy - dy / this.scale;
        this.update();
      }
    });
    this.svg.addEventListener("pointerup", (e) => {
      const wasDrag = drag && drag.moved;
      drag = null;
      if (!wasDrag && this.onClick) this.onClick(this.lonLatAt(e.clientX, e.clientY), e);
    });
    this.svg.addEventListener("wheel", (e) => {
      e.preventDefault();
      this.zoomBy(Math.exp(-e.deltaY * 0.0015), e.clientX, e.clientY);
    }, { passive: false });
  }

  clear(layer) { this.layers[layer].replaceChildren(); }

  setVisible(layer, visible) {
    this.layers[layer].style.display = visible ? "" : "none";
    if (visible) this.hidden.delete(layer); else this.hidden.add(layer);
    for (const node of this.layers.labels.querySelectorAll(`[data-layer="${layer}"]`)) node.style.display = visible ? "" : "none";
  }

  // ------------------------------------------------------------------------------------------ drawing helpers
  basemap(doc) {
    const g = this.layers.basemap;
    g.replaceChildren();
    for (const f of doc.features) {
      const role = f.properties && f.properties.role;
      el("path", { d: geometryPath(f.geometry), class: role === "land" ? "land" : "border",
                   "vector-effect": "non-scaling-stroke" }, g);
    }
  }

  graticule() {
    const g = this.layers.graticule;
    g.replaceChildren();
    let d = "";
    for (let lon = -180; lon <= 180; lon += 5) d += ringPath([[lon, -80], [lon, 80]], false);
    for (let lat = -80; lat <= 80; lat += 5) d += ringPath([[-180, lat], [180, lat]], false);
    el("path", { d, class: "graticule", "vector-effect": "non-scaling-stroke" }, g);
  }

  /** One footprint (polygon, circle or corridor as the API gives it) in ``layer``; returns the SVG element. */
  footprint(layer, fp, cls, attrs = {}) {
    const g = this.layers[layer];
    if (fp.kind === "corridor") {
      const meanLat = fp.path.reduce((s, p) => s + p[1], 0) / fp.path.length;
      const group = el("g", { class: `${cls} corridor`, ...attrs }, g);
      el("path", { d: ringPath(fp.path, false), class: "corridor-body",
                   "stroke-width": 2 * metresToUnits(fp.half_width_m, meanLat) }, group);
      el("path", { d: ringPath(fp.path, false), class: "corridor-axis", "vector-effect": "non-scaling-stroke" }, group);
      return group;
    }
    const ring = fp.kind === "circle" ? circleRing(fp.center, fp.radius_m) : fp.coordinates;
    return el("path", { d: ringPath(ring, true), class: cls, "vector-effect": "non-scaling-stroke", ...attrs }, g);
  }

  marker(layer, lonlat, cls, radiusPx = 5, attrs = {}) {
    const [x, y] = project(lonlat[0], lonlat[1]);
    return el("circle", { cx: x, cy: y, r: radiusPx / this.scale, "data-px-r": radiusPx, class: cls,
                          "vector-effect": "non-scaling-stroke", ...attrs }, this.layers[layer]);
  }

  triangle(layer, lonlat, cls, sizePx = 8, attrs = {}) {
    const [x, y] = project(lonlat[0], lonlat[1]);
    const node = el("path", { class: cls, "data-px-size": sizePx, "data-x": x, "data-y": y,
                              "vector-effect": "non-scaling-stroke", ...attrs }, this.layers[layer]);
    const s = sizePx / this.scale;
    node.setAttribute("d", `M${x},${y - s}L${x + s * 0.9},${y + s * 0.7}L${x - s * 0.9},${y + s * 0.7}Z`);
    return node;
  }

  /** A label in screen space (pixels), anchored at a WGS84 point and offset by (dx, dy) pixels. */
  label(layer, lonlat, text, cls = "label", fontPx = 12, dxPx = 7, dyPx = -7) {
    const [x, y] = project(lonlat[0], lonlat[1]);
    const node = el("text", { class: cls, "font-size": fontPx, dx: dxPx, dy: dyPx, "data-x": x, "data-y": y,
                              "data-layer": layer }, this.layers.labels);
    if (this.hidden.has(layer)) node.style.display = "none";
    node.textContent = text;
    return node;
  }

  line(layer, points, cls) {
    return el("path", { d: ringPath(points, false), class: cls, "vector-effect": "non-scaling-stroke" }, this.layers[layer]);
  }

  polygon(layer, points, cls) {
    return el("path", { d: ringPath(points, true), class: cls, "vector-effect": "non-scaling-stroke" }, this.layers[layer]);
  }
}
