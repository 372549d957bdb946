// Build the page's offline basemap from Natural Earth 1:50m (public domain) as packaged by the npm package
// world-atlas (TopoJSON), with topojson-client. Run by the install step: `npm ci && npm run basemap`.
//
// Output: src/forewarn/web/static/basemap/countries-50m.geojson, a GeoJSON FeatureCollection (WGS84 lon/lat
// degrees, rounded to 0.001 deg, about 100 m) of two features:
//   {role: "land"}    MultiPolygon of the land (its outline is the coastline);
//   {role: "borders"} MultiLineString of the boundaries between countries (each shared border once).
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { feature, mesh } from "topojson-client";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "basemap", "countries-50m.geojson");

const read = (name) => JSON.parse(readFileSync(require.resolve(`world-atlas/${name}`), "utf8"));
const countries = read("countries-50m.json");
const land = read("land-50m.json");

const round = (coords) =>
  typeof coords[0] === "number" ? [Math.round(coords[0] * 1e3) / 1e3, Math.round(coords[1] * 1e3) / 1e3]
                                : coords.map(round);
const geometry = (g) => ({ type: g.type, coordinates: round(g.coordinates) });

const landFeature = feature(land, land.objects.land);
const landGeometry = landFeature.type === "FeatureCollection" ? landFeature.features[0].geometry : landFeature.geometry;
const borders = mesh(countries, countries.objects.countries, (a, b) => a !== b);

const doc = {
  type: "FeatureCollection",
  source: "Natural Earth 1:50m (public domain) via world-atlas; country borders and land",
  features: [
    { type: "Feature", properties: { role: "land" }, geometry: geometry(landGeometry) },
    { type: "Feature", properties: { role: "borders" }, geometry: geometry(borders) },
  ],
};
mkdirSync(dirname(out), { recursive: true });
writeFileSync(out, JSON.stringify(doc));
console.log(`basemap written: ${out}`);
