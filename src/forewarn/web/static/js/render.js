// HTML for the side panels: deliveries, operations, conflicts, resolutions, outcomes. Text only from the API
// (escaped); units stated: metres with feet, km, km², UTC.

import { esc, fmtBand, fmtKm, fmtLead, fmtTime } from "./geo.js";

const DETAIL_LABELS = { purpose: "purpose", unit: "unit", call_signs: "call signs", notes: "notes" };

export function detailHtml(detail) {
  if (!detail) return "";
  const rows = Object.entries(detail)
    .filter(([, v]) => v !== null && v !== undefined && !(Array.isArray(v) && !v.length) && v !== "")
    .map(([k, v]) => `<dt>${esc(DETAIL_LABELS[k] || k)}</dt><dd>${esc(Array.isArray(v) ? v.join(", ") : v)}</dd>`);
  return rows.length ? `<dl class="detail">${rows.join("")}</dl>` : "";
}

function footprintText(fp) {
  if (fp.kind === "circle") return `circle r ${fmtKm(fp.radius_m)} at ${fp.center[1].toFixed(3)}°N ${fp.center[0].toFixed(3)}°E`;
  if (fp.kind === "corridor") return `corridor ±${fmtKm(fp.half_width_m)}, ${fp.path.length} points`;
  return `polygon, ${fp.coordinates.length} vertices`;
}

export function volumeHtml(v) {
  return `<li>${esc(footprintText(v.footprint))}; ${esc(fmtBand(v.lower_m, v.upper_m))}; `
    + `${esc(fmtTime(v.start))} → ${esc(fmtTime(v.end))}</li>`;
}

export function operationHtml(op, me) {
  const own = op.party_id === me;
  const released = !own && op.detail ? `<p class="small released">planning detail released to you:</p>` : "";
  return `<header><strong class="opid">${esc(op.id)}</strong> <span class="tag ${own ? "own" : "others"}">${own ? "yours" : esc(op.party_id)}</span>
      <span class="tag">${esc(op.activity_class)}</span> <span class="tag st-${esc(op.state)}">${esc(op.state)} v${esc(op.version)}</span></header>
    <ul class="vols">${op.volumes.map(volumeHtml).join("")}</ul>
    <p class="small muted">notified ${esc(fmtTime(op.notified_at))}</p>
    ${released}${detailHtml(op.detail)}`;
}

export function siteHtml(s) {
  const where = s.point ? `${s.point[1].toFixed(3)}°N ${s.point[0].toFixed(3)}°E` : "area";
  return `<header><strong>${esc(s.name)}</strong> <span class="tag site">${esc(s.category)}</span></header>
    <p class="small">${esc(where)}, buffer ${esc(fmtKm(s.buffer_m))}; registered by ${esc(s.registered_by)}</p>`;
}

export function conflictHtml(c, me) {
  const o = c.overlap;
  const s = c.separation;
  const mine = [c.a, c.b].find((r) => r.party_id === me);
  const theirs = [c.a, c.b].find((r) => r !== mine) || c.b;
  const who = mine ? `your <b>${esc(mine.operation_id)}</b> (${esc(mine.activity_class)}) and ${esc(theirs.party_id)}'s <b>${esc(theirs.operation_id)}</b> (${esc(theirs.activity_class)})`
    : `<b>${esc(c.a.operation_id)}</b> and <b>${esc(c.b.operation_id)}</b>`;
  return `<li class="conflict" data-conflict="${esc(c.a.operation_id)}|${esc(c.b.operation_id)}">
    <div>conflict between ${who} under <i>${esc(c.agreement_id)}</i></div>
    <div class="small">overlap ${o.area_km2.toFixed(1)} km², ${Math.round(o.altitude_overlap_m)} m vertical,
      ${Math.round(o.time_overlap_s / 60)} min; separation found ${fmtKm(s.horizontal_m)} / ${Math.round(s.vertical_m)} m / ${Math.round(s.time_s / 60)} min
      (minima ${fmtKm(c.minima.horizontal_m)} / ${Math.round(c.minima.vertical_m)} m / ${Math.round(c.minima.time_s / 60)} min)</div>
    <div class="small">asked to adjust: <b class="adjusting">${esc(c.adjusting_operation)}</b>; holds: ${esc(c.holding_operation)} (${esc(c.priority_reason)})</div>
  </li>`;
}

export function resolutionsHtml(sets) {
  if (!sets || !sets.length) return "";
  return sets.map((r) => `<div class="resolutions" data-resolutions="${esc(r.operation_id)}">
      <div><b>Proposed adjustment</b> for ${esc(r.operation_id)} (clears ${esc(r.conflicts_cleared)} conflict${r.conflicts_cleared === 1 ? "" : "s"}):</div>
      <ul>${r.options.map((x) => `<li class="resolution ${x.verified ? "verified" : ""}">${esc(x.description)}${x.verified ? " <span class=\"tag ok\">verified</span>" : ""}</li>`).join("")}
      ${r.not_found.map((x) => `<li class="muted">${esc(x)}</li>`).join("")}</ul></div>`).join("");
}

export function siteWarningsHtml(ws) {
  if (!ws || !ws.length) return "";
  return `<ul class="sitewarn">${ws.map((w) => `<li>⚠ ${esc(w.operation_id)} (${esc(w.party_id)}) comes within ${esc(fmtKm(w.distance_m))} of protected ${esc(w.category)} <b>${esc(w.site_name)}</b> (buffer ${esc(fmtKm(w.buffer_m))})</li>`).join("")}</ul>`;
}

/** What a delivery is about, in words (plain text, to escape where shown): the notice of an operation, or the
 * registration of a protected site (by name and id), with who sent it. */
export function deliverySubject(p) {
  if (p.type === "site_registration" || p.site) {
    const s = p.site || {};
    return `protected site ${s.name || ""} (${s.id || "?"}) registered by ${p.from_party || "?"}`;
  }
  const op = p.operation ? p.operation.id : p.operation_id || "";
  return `notice ${p.kind ? `${p.kind} ` : ""}of ${op} from ${p.from_party || "?"}`;
}

export function deliveryHtml(d, me) {
  const p = d.payload || {};
  const op = p.operation || null;
  const escalation = p.type === "escalation";
  const tags = [];
  if (escalation) tags.push(`<span class="tag escalation">ESCALATION · backup channel</span>`);
  if (d.escalated_at) tags.push(`<span class="tag escalation" title="${esc(fmtTime(d.escalated_at))}">ESCALATED</span>`);
  if (d.late) tags.push(`<span class="tag late">LATE</span>`);
  if (p.affected) tags.push(`<span class="tag affected">affects you</span>`);
  if (d.reason === "site") tags.push(`<span class="tag site">site warning</span>`);
  const ack = d.acked_at
    ? `<span class="acked">✓ acknowledged ${esc(fmtTime(d.acked_at))}</span>`
    : `<button type="button" class="ack" data-delivery="${esc(d.id)}">Acknowledge</button>`
      + (d.ack_deadline ? ` <span class="small muted">due by ${esc(fmtTime(d.ack_deadline))}</span>` : "");
  const lead = d.lead_time_s !== null && d.lead_time_s !== undefined
    ? `<div class="lead">lead time <b class="lead-time">${esc(fmtLead(d.lead_time_s))}</b>`
      + (d.min_notice_s !== null && d.min_notice_s !== undefined ? ` (agreed minimum ${esc(fmtLead(d.min_notice_s))})` : "") + `</div>`
    : "";
  const title = op
    ? `<b>${esc(p.kind || p.type)}</b> from <b>${esc(p.from_party)}</b>: <a class="oplink" data-show-op="${esc(op.id)}">${esc(op.id)}</a> (${esc(op.activity_class)})`
    : `<b>${esc(p.type || "delivery")}</b> ${esc(p.message || "")}`;
  const conflicts = (p.conflicts || []).length
    ? `<ul class="conflicts">${p.conflicts.map((c) => conflictHtml(c, me)).join("")}</ul>` : "";
  return `<article class="item delivery ${d.acked_at ? "is-acked" : ""} ${p.affected ? "is-affected" : ""} ${escalation ? "is-escalation" : ""}"
      data-delivery-id="${esc(d.id)}" data-operation="${esc(op ? op.id : "")}">
    <header>${title} <span class="tags">${tags.join(" ")}</span></header>
    <div class="small muted">#${esc(d.seq)} · ${esc(d.channel)} · created ${esc(fmtTime(d.created_at))}${d.first_sent_at ? ` · sent ${esc(fmtTime(d.first_sent_at))}` : ""}</div>
    ${lead}
    ${p.message ? `<div class="message">${esc(p.message)}</div>` : ""}
    ${op ? `<ul class="vols">${op.volumes.map(volumeHtml).join("")}</ul>` : ""}
    ${op && op.detail ? `<p class="small released">planning detail released to you:</p>${detailHtml(op.detail)}` : ""}
    ${conflicts}
    ${resolutionsHtml(p.resolutions)}
    ${siteWarningsHtml(p.site_warnings)}
    <footer>${ack}</footer>
  </article>`;
}

export function outcomeHtml(o, me, filed) {
  const head = filed
    ? `<h3>Filed: notice #${esc(o.notice_id)} — ${esc(o.operation_id)} v${esc(o.version)} is notified</h3>`
    : `<h3>What-if check: ${esc(o.operation_id)} (nothing stored)</h3>`;
  const leads = o.lead_times.length
    ? `<ul class="leads">${o.lead_times.map((l) => `<li>${esc(l.agreement_id)}: lead time ${esc(fmtLead(l.lead_time_s))} against minimum ${esc(fmtLead(l.min_notice_s))}${l.late ? ' <span class="tag late">LATE</span>' : ""}</li>`).join("")}</ul>`
    : "";
  const conflicts = o.conflicts.length
    ? `<h4>${o.conflicts.length} conflict${o.conflicts.length === 1 ? "" : "s"}</h4><ul class="conflicts">${o.conflicts.map((c) => conflictHtml(c, me)).join("")}</ul>`
    : `<p class="ok">No conflicts.</p>`;
  const impacts = o.impacts.length
    ? `<h4>Other parties</h4><ul class="impacts">${o.impacts.map((i) => `<li><b>${esc(i.party_id)}</b>: ${esc(i.message)}</li>`).join("")}</ul>`
    : "";
  const mineAdjust = o.conflicts.some((c) => c.adjusting_operation === o.operation_id);
  const noAdjust = o.conflicts.length && !mineAdjust
    ? `<p class="small">${esc(o.operation_id)} holds: you are not asked to adjust; the other side is told what it could change.</p>` : "";
  const warnings = o.site_warnings.length ? `<h4>Protected sites</h4>${siteWarningsHtml(o.site_warnings)}` : "";
  return `<section class="outcome ${filed ? "filed" : "check"}">${head}${leads}${conflicts}${noAdjust}${resolutionsHtml(o.resolutions)}${warnings}${impacts}</section>`;
}
