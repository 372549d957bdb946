// The one situation map of Forewarn: the operations-centre page draws with it (main.js, notice.js) and the offline
// export (`forewarn demo` / `forewarn export`, situation.html) inlines this very file and calls exportPage().
// Built on Leaflet (vendored from npm, global `L`, loaded before this module) in Web Mercator, with the Natural
// Earth basemap GeoJSON as background layer: no tiles, nothing fetched from elsewhere.
//
// Coordinates are WGS84 longitude/latitude in degrees ([lon, lat], GeoJSON order); distances in metres. Colours
// say what a thing IS, one palette and one legend for the page and the export (LEGEND). Text from data only ever
// reaches the page through textContent.

const L = globalThis.L;

/** What a thing is -> its colour. Parties are not told apart by colour: an envelope is yours or another's. */
export const PALETTE = {
  own: "#1d4ed8", // own notice: the signed-in party's notified envelopes
  others: "#57534e", // notice of another party (its safety envelope)
  conflict: "#dc2626",
  site: "#15803d", // protected site and its buffer
  warning: "#ea580c", // site warning, track alert
  track: "#a21caf",
  draft: "#111827", // draft notice (not filed), dashed
  land: "#ece6d6",
  border: "#9c8f78",
  graticule: "#c7d3dd",
};

/** The legend, in drawing order of importance: layer, colour key, label, whether it is dashed. */
export const LEGEND = [
  { layer: "own", key: "own", label: "own notices" },
  { layer: "others", key: "others", label: "notices of other parties" },
  { layer: "conflicts", key: "conflict", label: "conflicts" },
  { layer: "sites", key: "site", label: "protected sites (with buffer)" },
  { layer: "alerts", key: "warning", label: "warnings (site warnings, track alerts)" },
  { layer: "tracks", key: "track", label: "live tracks" },
  { layer: "draft", key: "draft", label: "draft notice (not filed)", dashed: true },
];

/** Layers bottom to top; each is a Leaflet pane whose element has the id `layer-NAME`. */
export const LAYERS = ["basemap", "sites", "others", "own", "conflicts", "alerts", "tracks", "draft", "labels"];

const EARTH_CIRCUMFERENCE_M = 40075016.686; // Web Mercator sphere (display only)
const DEG = Math.PI / 180;

/** Leaflet path options of a drawn thing, from the first class token that has a style. */
const STYLES = {
  land: { stroke: false, fill: true, fillColor: PALETTE.land, fillOpacity: 1, interactive: false },
  border: { color: PALETTE.border, weight: 0.8, fill: false, interactive: false },
  graticule: { color: PALETTE.graticule, weight: 0.6, fill: false, interactive: false },
  "conflict-outline": { color: PALETTE.conflict, weight: 3, fill: false },
  "conflict-point": { color: "#fff", weight: 1.5, fillColor: PALETTE.conflict, fillOpacity: 1 },
  "site-buffer": { color: PALETTE.site, weight: 1.2, dashArray: "4 3", fillColor: PALETTE.site, fillOpacity: 0.08 },
  "site-area": { color: PALETTE.site, weight: 1.5, fillColor: PALETTE.site, fillOpacity: 0.15 },
  site: { color: "#fff", weight: 1.5, fillColor: PALETTE.site, fillOpacity: 1 },
  "site-warning": { color: "#fff", weight: 1.5, fillColor: PALETTE.warning, fillOpacity: 1 },
  "track-trail": { color: PALETTE.track, weight: 2, opacity: 0.6, fill: false },
  track: { color: "#fff", weight: 1.5, fillColor: PALETTE.track, fillOpacity: 1 },
  "draft-vertex": { color: PALETTE.draft, weight: 1.5, fillColor: "#fff", fillOpacity: 1 },
  "draft-line": { color: PALETTE.draft, weight: 2, dashArray: "6 4", fill: false },
  "draft-shape": { color: PALETTE.draft, weight: 2, dashArray: "6 4", fillColor: PALETTE.draft, fillOpacity: 0.06 },
  own: { color: PALETTE.own, weight: 2, fillColor: PALETTE.own, fillOpacity: 0.18 },
  others: { color: PALETTE.others, weight: 1.5, fillColor: PALETTE.others, fillOpacity: 0.14 },
};

function styleOf(cls) {
  const tokens = cls.split(/\s+/);
  const key = Object.keys(STYLES).find((k) => tokens.includes(k));
  return { ...(key ? STYLES[key] : STYLES.others), className: cls };
}

function setAttrs(layer, attrs) {
  const node = layer.getElement && layer.getElement();
  if (!node) return;
  for (const [k, v] of Object.entries(attrs)) if (v !== undefined && v !== null) node.setAttribute(k, v);
}

const latlngs = (points) => points.map((p) => [p[1], p[0]]);

/** Ground metres per screen pixel at latitude `lat` (degrees) and Leaflet zoom `zoom` (256-pixel tiles). */
export function metresPerPixel(lat, zoom) {
  return (EARTH_CIRCUMFERENCE_M * Math.cos(lat * DEG)) / (256 * 2 ** zoom);
}

export class MapView {
  /** A map in the element `container` (its size is the map's); `zoomControl` adds Leaflet's + and - buttons. */
  constructor(container, { zoomControl = false } = {}) {
    this.container = container;
    this.map = L.map(container, { zoomControl, attributionControl: false, zoomSnap: 0, zoomDelta: 0.5,
                                  doubleClickZoom: false, worldCopyJump: false, minZoom: 1, maxZoom: 16 });
    L.control.attribution({ prefix: false }).addAttribution("Leaflet · basemap: Natural Earth (public domain)")
      .addTo(this.map);
    L.control.scale({ imperial: false, position: "bottomleft" }).addTo(this.map);
    this.layers = {};
    this.labels = new Map(); // layer -> label markers
    this.corridors = []; // corridor bodies whose pixel width follows the zoom
    this.hidden = new Set();
    LAYERS.forEach((name, i) => {
      const pane = this.map.createPane(`fw-${name}`);
      pane.id = `layer-${name}`;
      pane.classList.add("layer", name);
      pane.style.zIndex = String(390 + i);
      this.layers[name] = L.layerGroup([], { pane: `fw-${name}` }).addTo(this.map);
    });
    this.onClick = null; // (lonlat, event) => void, for clicks that are not drags
    this.onMove = null;
    this.map.setView([35, 40], 6);
    this.map.on("click", (e) => this.onClick && this.onClick([e.latlng.lng, e.latlng.lat], e.originalEvent));
    this.map.on("mousemove", (e) => this.onMove && this.onMove([e.latlng.lng, e.latlng.lat]));
    this.map.on("zoomend", () => this._corridorWidths());
    this.map.on("zoomend moveend", () => this._declutter());
  }

  /** Re-read the container size, then hide labels that would overlap. */
  update() {
    this.map.invalidateSize({ pan: false });
    this._corridorWidths();
    this._declutter();
  }

  /** Client (page) coordinates of a WGS84 point: used by tests to click on the map. */
  screenPoint(lon, lat) {
    const p = this.map.latLngToContainerPoint([lat, lon]);
    const r = this.container.getBoundingClientRect();
    return { x: r.left + p.x, y: r.top + p.y };
  }

  lonLatAt(clientX, clientY) {
    const r = this.container.getBoundingClientRect();
    const ll = this.map.containerPointToLatLng([clientX - r.left, clientY - r.top]);
    return [ll.lng, ll.lat];
  }

  zoomBy(factor) { this.map.setZoom(this.map.getZoom() + Math.log2(factor)); }

  /** Fit the view to WGS84 points (with a margin). */
  fit(points) {
    if (!points.length) return;
    const bounds = L.latLngBounds(latlngs(points));
    const pad = bounds.getNorth() - bounds.getSouth() < 0.02 ? bounds.pad(0.5) : bounds;
    this.map.fitBounds(pad, { padding: [30, 30], animate: false, maxZoom: 13 });
  }

  /** Remove everything drawn in `layer`, its labels included ("labels": every label). */
  clear(layer) {
    this.layers[layer].clearLayers();
    if (layer === "labels") {
      this.labels.clear();
      return;
    }
    for (const m of this.labels.get(layer) || []) this.layers.labels.removeLayer(m);
    this.labels.set(layer, []);
    this.corridors = this.corridors.filter((c) => c.layer !== layer);
  }

  setVisible(layer, visible) {
    const pane = this.map.getPane(`fw-${layer}`);
    pane.style.display = visible ? "" : "none";
    if (visible) this.hidden.delete(layer); else this.hidden.add(layer);
    for (const m of this.labels.get(layer) || []) m.getElement().style.display = visible ? "" : "none";
  }

  _add(layer, leafletLayer, attrs) {
    leafletLayer.addTo(this.layers[layer]);
    setAttrs(leafletLayer, attrs);
    return leafletLayer;
  }

  _opts(layer, cls) { return { ...styleOf(cls), pane: `fw-${layer}` }; }

  // ------------------------------------------------------------------------------------------ drawing helpers
  /** The Natural Earth basemap: a FeatureCollection of {role: "land"} and {role: "borders"} (see tools/basemap.mjs). */
  basemap(doc) {
    this.clear("basemap");
    for (const f of doc.features) {
      const cls = f.properties && f.properties.role === "land" ? "land" : "border";
      L.geoJSON(f, { style: () => this._opts("basemap", cls), pane: "fw-basemap", interactive: false })
        .addTo(this.layers.basemap);
    }
  }

  /** Meridians and parallels every 5 degrees under everything else. */
  graticule() {
    const lines = [];
    for (let lon = -180; lon <= 180; lon += 5) lines.push([[-80, lon], [80, lon]]);
    for (let lat = -80; lat <= 80; lat += 5) lines.push([[lat, -180], [lat, 180]]);
    L.polyline(lines, this._opts("basemap", "graticule")).addTo(this.layers.basemap);
  }

  /** One footprint (polygon, circle or corridor as the API gives it) in `layer`; returns the Leaflet layer. */
  footprint(layer, fp, cls, attrs = {}) {
    if (fp.kind === "corridor") {
      const meanLat = fp.path.reduce((s, p) => s + p[1], 0) / fp.path.length;
      const body = L.polyline(latlngs(fp.path), { ...this._opts(layer, `${cls} corridor`), lineCap: "round",
                                                  lineJoin: "round", opacity: 0.35, fill: false });
      this._add(layer, body, attrs);
      this.corridors.push({ layer, body, meanLat, halfWidth: fp.half_width_m });
      this._corridorWidths();
      this._add(layer, L.polyline(latlngs(fp.path), { ...this._opts(layer, `${cls} corridor-axis`), weight: 1,
                                                        fill: false, interactive: false }), {});
      return body;
    }
    if (fp.kind === "circle") {
      return this._add(layer, L.circle([fp.center[1], fp.center[0]], { ...this._opts(layer, cls), radius: fp.radius_m }),
                       attrs);
    }
    return this.polygon(layer, fp.coordinates, cls, attrs);
  }

  /** A GeoJSON geometry (Polygon, MultiPolygon, LineString, Point...) as given, in `layer`. */
  geometry(layer, geom, cls, attrs = {}) {
    const g = L.geoJSON(geom, { style: () => this._opts(layer, cls), pane: `fw-${layer}`,
                                pointToLayer: (_, ll) => L.circleMarker(ll, { ...this._opts(layer, cls), radius: 5 }) });
    g.addTo(this.layers[layer]);
    g.eachLayer((l) => setAttrs(l, attrs));
    return g;
  }

  marker(layer, lonlat, cls, radiusPx = 5, attrs = {}) {
    return this._add(layer, L.circleMarker([lonlat[1], lonlat[0]], { ...this._opts(layer, cls), radius: radiusPx }), attrs);
  }

  /** A warning triangle of `sizePx` pixels at a WGS84 point. */
  triangle(layer, lonlat, cls, sizePx = 8, attrs = {}) {
    const svg = document.createElementNS("http://www.w3.org/2000/svg", "svg");
    const s = sizePx;
    svg.setAttribute("width", String(2 * s));
    svg.setAttribute("height", String(2 * s));
    svg.setAttribute("viewBox", `${-s} ${-s} ${2 * s} ${2 * s}`);
    const path = document.createElementNS("http://www.w3.org/2000/svg", "path");
    path.setAttribute("d", `M0,${-s}L${s * 0.9},${s * 0.7}L${-s * 0.9},${s * 0.7}Z`);
    path.setAttribute("fill", PALETTE.warning);
    path.setAttribute("stroke", "#fff");
    svg.appendChild(path);
    const icon = L.divIcon({ html: svg, className: cls, iconSize: [2 * s, 2 * s] });
    return this._add(layer, L.marker([lonlat[1], lonlat[0]], { icon, pane: `fw-${layer}`, keyboard: false }), attrs);
  }

  /** A text label at a WGS84 point, offset by (dx, dy) pixels; hidden when it would overlap a later one. */
  label(layer, lonlat, text, cls = "label", fontPx = 12, dxPx = 7, dyPx = -7) {
    const span = document.createElement("span");
    span.textContent = text;
    span.style.fontSize = `${fontPx}px`;
    const icon = L.divIcon({ html: span, className: `fw-label ${cls}`, iconSize: null, iconAnchor: [-dxPx, fontPx - dyPx] });
    const m = L.marker([lonlat[1], lonlat[0]], { icon, pane: "fw-labels", interactive: false, keyboard: false });
    m.addTo(this.layers.labels);
    m.getElement().dataset.layer = layer;
    if (this.hidden.has(layer)) m.getElement().style.display = "none";
    if (!this.labels.has(layer)) this.labels.set(layer, []);
    this.labels.get(layer).push(m);
    return m;
  }

  line(layer, points, cls, attrs = {}) {
    return this._add(layer, L.polyline(latlngs(points), { ...this._opts(layer, cls), fill: false }), attrs);
  }

  polygon(layer, points, cls, attrs = {}) {
    return this._add(layer, L.polygon(latlngs(points), this._opts(layer, cls)), attrs);
  }

  _corridorWidths() {
    const zoom = this.map.getZoom();
    for (const c of this.corridors) c.body.setStyle({ weight: Math.max(2, (2 * c.halfWidth) / metresPerPixel(c.meanLat, zoom)) });
  }

  _declutter() {
    const kept = [];
    const all = [...this.labels.values()].flat().reverse();
    for (const m of all) {
      const node = m.getElement();
      if (!node || node.style.display === "none") continue;
      node.style.visibility = "";
      const b = node.getBoundingClientRect();
      if (kept.some((k) => b.left < k.right && k.left < b.right && b.top < k.bottom && k.top < b.bottom)) {
        node.style.visibility = "hidden";
      } else {
        kept.push(b);
      }
    }
  }
}

/** The legend (one for the page and the export): a checkbox per layer that shows or hides it. */
export function legend(container, map) {
  container.replaceChildren(...LEGEND.map((entry) => {
    const label = document.createElement("label");
    const box = document.createElement("input");
    Object.assign(box, { type: "checkbox", checked: true });
    box.dataset.layer = entry.layer;
    box.addEventListener("change", () => map.setVisible(entry.layer, box.checked));
    const swatch = document.createElement("i");
    swatch.className = `sw ${entry.key}`;
    swatch.style.background = `${PALETTE[entry.key]}33`;
    swatch.style.border = `2px ${entry.dashed ? "dashed" : "solid"} ${PALETTE[entry.key]}`;
    label.append(box, " ", swatch, entry.label);
    return label;
  }));
}

// ---------------------------------------------------------------------------------------------- offline export
/** Draw one feature of the export (already validated by forewarn.web.mapview) and return its Leaflet layer. */
function drawItem(map, item) {
  const attrs = { "data-feature": item.index, "data-kind": item.kind };
  if (item.kind === "volume") {
    const layer = map.geometry("others", item.geometry, "vol others", { ...attrs, "data-op": item.operation_id });
    if (item.label) map.label("others", item.anchor, item.label, "label op-label others", 12);
    return layer;
  }
  if (item.kind === "protected_site") {
    if (item.geometry.type !== "Point") return map.geometry("sites", item.geometry, "site-area", attrs);
    if (item.buffer_m > 0) {
      map.footprint("sites", { kind: "circle", center: item.anchor, radius_m: item.buffer_m }, "site-buffer", attrs);
    }
    if (item.label) map.label("sites", item.anchor, item.label, "label site-label", 11, 7, 12);
    return map.marker("sites", item.anchor, "site", 5, attrs);
  }
  if (item.kind === "conflict") return map.marker("conflicts", item.anchor, "conflict-point", 6, attrs);
  return map.marker("alerts", item.anchor, "site-warning", 5, attrs);
}

function showDetails(rows) {
  const body = document.getElementById("fw-details-body");
  const dl = document.createElement("dl");
  for (const [k, v] of rows) {
    const dt = document.createElement("dt");
    const dd = document.createElement("dd");
    dt.textContent = k;
    dd.textContent = v;
    dl.append(dt, dd);
  }
  body.replaceChildren(dl);
}

/** The offline export (situation.html): its data is JSON in #fw-data, the basemap GeoJSON in #fw-basemap. */
export function exportPage() {
  const data = JSON.parse(document.getElementById("fw-data").textContent);
  const map = new MapView(document.getElementById("fw-map"), { zoomControl: true });
  globalThis.forewarnMap = map;
  legend(document.getElementById("fw-legend"), map);
  map.graticule();
  const base = document.getElementById("fw-basemap");
  if (base) map.basemap(JSON.parse(base.textContent));
  for (const item of data.items) {
    drawItem(map, item).on("click", () => showDetails(data.details[String(item.index)] || []));
  }
  const [w, s, e, n] = data.bounds;
  map.fit([[w, s], [e, n]]);
  map.update();
  document.body.dataset.map = "ready";
}
