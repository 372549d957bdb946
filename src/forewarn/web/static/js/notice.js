// Filing a notice from the page: draw a polygon, circle or corridor on the map (or upload a GeoJSON plan), set
// the altitude band (metres or feet, sent as lower_m/upper_m or lower_ft/upper_ft: the service converts, no QNH
// or geoid correction) and the UTC window; "Check" runs the what-if endpoint, "File" notifies.

import { api, ApiError } from "./api.js";
import { distance, esc, fmtKm, pad } from "./geo.js";
import { outcomeHtml } from "./render.js";

const $ = (id) => document.getElementById(id);

function utcInput(date) {
  return `${date.getUTCFullYear()}-${pad(date.getUTCMonth() + 1)}-${pad(date.getUTCDate())} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}`;
}

/** "YYYY-MM-DD HH:MM[:SS]" (or with a T) read as UTC, as ISO 8601 with Z. */
function isoUtc(value, name) {
  const m = /^(\d{4}-\d{2}-\d{2})[T ](\d{2}:\d{2})(:\d{2})?Z?$/.exec(value.trim());
  if (!m) throw new Error(`${name}: give a UTC time as YYYY-MM-DD HH:MM`);
  return `${m[1]}T${m[2]}${m[3] || ":00"}Z`;
}

function errorText(err) {
  if (err instanceof ApiError && err.body && err.body.error) {
    const e = err.body.error;
    const details = e.details && e.details.errors
      ? e.details.errors.map((x) => `${(x.loc || x.field || []).toString()}: ${x.msg || x.message || JSON.stringify(x)}`).join("; ")
      : "";
    return `${e.code}: ${e.message}${details ? ` — ${details}` : ""}`;
  }
  return err.message || String(err);
}

export class NoticeForm {
  constructor(map, { party, onOutcome, onFiled }) {
    this.map = map;
    this.party = party;
    this.onOutcome = onOutcome;
    this.onFiled = onFiled;
    this.mode = null; // polygon | circle | corridor while drawing
    this.points = [];
    this.shape = null; // finished footprint (API form)
    this.uploaded = null; // volumes from a GeoJSON file
    for (const b of document.querySelectorAll("[data-draw]")) b.addEventListener("click", () => this.startDrawing(b.dataset.draw));
    $("draw-finish").addEventListener("click", () => this.finish());
    $("draw-clear").addEventListener("click", () => this.clearDraft());
    $("radius-km").addEventListener("input", () => this._refreshShape());
    $("halfwidth-km").addEventListener("input", () => this._refreshShape());
    $("geojson-file").addEventListener("change", (e) => this.upload(e.target.files[0]));
    $("check-button").addEventListener("click", () => this.submit(false));
    $("file-button").addEventListener("click", () => this.submit(true));
  }

  get drawing() { return this.mode !== null; }

  reset() {
    const now = new Date();
    const start = new Date(Math.ceil((now.getTime() + 2 * 3600e3) / 300e3) * 300e3);
    $("start").value = utcInput(start);
    $("end").value = utcInput(new Date(start.getTime() + 2 * 3600e3));
    const p = this.party() || "op";
    $("op-id").value = `${p}-${Math.random().toString(36).slice(2, 7)}`;
    $("outcome").innerHTML = "";
    this.clearDraft();
  }

  startDrawing(mode) {
    this.mode = mode;
    this.points = [];
    this.shape = null;
    this.uploaded = null;
    for (const b of document.querySelectorAll("[data-draw]")) b.classList.toggle("active", b.dataset.draw === mode);
    document.body.classList.add("drawing");
    $("draw-help").textContent = {
      polygon: "Click the vertices on the map, then Finish.",
      circle: "Click the centre, then a point on the edge (or set the radius).",
      corridor: "Click the points of the route, then Finish (half-width from the field).",
    }[mode];
    this.renderDraft();
  }

  addPoint(lonlat) {
    this.points.push(lonlat);
    if (this.mode === "circle" && this.points.length === 2) {
      $("radius-km").value = (distance(this.points[0], this.points[1]) / 1000).toFixed(1);
      this.points = [this.points[0]];
      this.finish();
      return;
    }
    this.renderDraft();
  }

  finish() {
    const need = { polygon: 3, circle: 1, corridor: 2 }[this.mode];
    if (!this.mode) return;
    if (this.points.length < need) {
      $("draw-help").textContent = `A ${this.mode} needs at least ${need} point${need > 1 ? "s" : ""}.`;
      return;
    }
    this.shapeMode = this.mode;
    this.shapePoints = this.points;
    this.mode = null;
    this.points = [];
    document.body.classList.remove("drawing");
    for (const b of document.querySelectorAll("[data-draw]")) b.classList.remove("active");
    this._refreshShape();
  }

  _refreshShape() {
    if (!this.shapeMode) return;
    const pts = this.shapePoints.map((p) => [Number(p[0].toFixed(5)), Number(p[1].toFixed(5))]);
    if (this.shapeMode === "polygon") this.shape = { kind: "polygon", coordinates: pts };
    else if (this.shapeMode === "circle") this.shape = { kind: "circle", center: pts[0], radius_m: Number($("radius-km").value) * 1000 };
    else this.shape = { kind: "corridor", path: pts, half_width_m: Number($("halfwidth-km").value) * 1000 };
    $("draw-help").textContent = "Footprint ready. Set altitudes and window, then Check or File.";
    this.renderDraft();
  }

  clearDraft() {
    this.mode = null;
    this.points = [];
    this.shape = null;
    this.shapeMode = null;
    this.uploaded = null;
    document.body.classList.remove("drawing");
    for (const b of document.querySelectorAll("[data-draw]")) b.classList.remove("active");
    $("draw-help").textContent = "Choose a tool, then click on the map.";
    $("geojson-file").value = "";
    this.renderDraft();
  }

  async upload(file) {
    if (!file) return;
    try {
      const doc = JSON.parse(await file.text());
      const features = doc.type === "FeatureCollection" ? doc.features : doc.type === "Feature" ? [doc] : null;
      if (!features || !features.length) throw new Error("a plan is a GeoJSON FeatureCollection (or Feature)");
      this.uploaded = features.map((f, i) => ({ footprint: this._footprintOf(f, i), props: f.properties || {} }));
      if (doc.operation && doc.operation.activity_class) $("op-class").value = doc.operation.activity_class;
      if (doc.operation && doc.operation.id) $("op-id").value = doc.operation.id;
      this.shape = null;
      this.shapeMode = null;
      $("draw-help").textContent = `Loaded ${features.length} volume${features.length > 1 ? "s" : ""} from ${file.name}.`;
      this.renderDraft();
    } catch (err) {
      this.uploaded = null;
      $("draw-help").textContent = `Cannot use ${file.name}: ${err.message}`;
    }
  }

  _footprintOf(f, i) {
    const g = f.geometry || {};
    const p = f.properties || {};
    if (g.type === "Polygon") return { kind: "polygon", coordinates: g.coordinates[0] };
    if (g.type === "Point") {
      if (!p.radius_m) throw new Error(`features[${i}]: a Point needs properties.radius_m (metres)`);
      return { kind: "circle", center: g.coordinates, radius_m: p.radius_m };
    }
    if (g.type === "LineString") {
      if (!p.half_width_m) throw new Error(`features[${i}]: a LineString needs properties.half_width_m (metres)`);
      return { kind: "corridor", path: g.coordinates, half_width_m: p.half_width_m };
    }
    throw new Error(`features[${i}]: geometry ${g.type} is not a footprint (Polygon, Point or LineString)`);
  }

  /** The volumes to send: the drawn shape (or each uploaded feature) x the form's band and window. */
  volumes() {
    const unit = $("alt-unit").value;
    const band = { [`lower_${unit}`]: Number($("lower").value), [`upper_${unit}`]: Number($("upper").value) };
    const win = { start: isoUtc($("start").value, "start"), end: isoUtc($("end").value, "end") };
    if (this.uploaded) {
      const keys = ["lower_m", "upper_m", "lower_ft", "upper_ft", "lower_fl", "upper_fl"];
      return this.uploaded.map(({ footprint, props }) => {
        const own = Object.fromEntries(keys.filter((k) => k in props).map((k) => [k, props[k]]));
        return { footprint, ...(Object.keys(own).length ? own : band),
                 start: props.start || win.start, end: props.end || win.end };
      });
    }
    if (!this.shape) throw new Error("draw a footprint on the map (or upload a GeoJSON plan) first");
    return [{ footprint: this.shape, ...band, ...win }];
  }

  detail() {
    const d = {};
    const purpose = $("d-purpose").value.trim();
    const unit = $("d-unit").value.trim();
    const notes = $("d-notes").value.trim();
    const calls = $("d-callsigns").value.split(",").map((s) => s.trim()).filter(Boolean);
    if (purpose) d.purpose = purpose;
    if (unit) d.unit = unit;
    if (notes) d.notes = notes;
    if (calls.length) d.call_signs = calls;
    return d;
  }

  async submit(file) {
    const out = $("outcome");
    const button = file ? $("file-button") : $("check-button");
    button.disabled = true;
    out.innerHTML = `<p class="muted">${file ? "filing" : "checking"}…</p>`;
    try {
      const body = { id: $("op-id").value.trim(), activity_class: $("op-class").value.trim(), volumes: this.volumes() };
      if (file) body.detail = this.detail();
      const outcome = await api(file ? "/v1/operations" : "/v1/check", { method: "POST", body });
      out.innerHTML = outcomeHtml(outcome, this.party(), file);
      out.scrollIntoView({ block: "start" });
      this.onOutcome(outcome);
      if (file) {
        this.clearDraft();
        await this.onFiled(outcome);
      }
    } catch (err) {
      out.innerHTML = `<p class="error" role="alert">${esc(errorText(err))}</p>`;
    } finally {
      button.disabled = false;
    }
  }

  renderDraft() {
    const map = this.map;
    map.clear("draft");
    if (this.mode && this.points.length) {
      if (this.mode === "polygon" && this.points.length >= 3) map.polygon("draft", this.points, "draft-shape");
      else if (this.points.length >= 2) map.line("draft", this.points, "draft-line");
      for (const p of this.points) map.marker("draft", p, "draft-vertex", 4);
    }
    const shapes = this.uploaded ? this.uploaded.map((u) => u.footprint) : this.shape ? [this.shape] : [];
    for (const fp of shapes) map.footprint("draft", fp, "draft-shape");
    const summary = shapes.map((fp) => (fp.kind === "circle" ? `circle r ${fmtKm(fp.radius_m)}`
      : fp.kind === "corridor" ? `corridor of ${fp.path.length} points ±${fmtKm(fp.half_width_m)}`
        : `polygon of ${fp.coordinates.length} vertices`)).join("; ");
    $("draft-summary").textContent = summary ? `Draft: ${summary}` : "";
    map.update();
  }
}
