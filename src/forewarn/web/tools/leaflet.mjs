// Vendor the map library of the page and of the exported situation map: Leaflet (BSD-2-Clause), installed from
// npm at the exact version pinned in package.json, copied into the package. Run by the install step:
// `npm ci && npm run assets`. Nothing is loaded from a CDN.
//
// Output: src/forewarn/web/static/vendor/leaflet/{leaflet.js, leaflet.css, LICENSE, VERSION}. The source-map
// comment is removed from leaflet.js so that neither the page nor the offline export asks for leaflet.js.map.
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "static", "vendor", "leaflet");
const root = dirname(require.resolve("leaflet/package.json"));
const version = JSON.parse(readFileSync(join(root, "package.json"), "utf8")).version;

const js = readFileSync(join(root, "dist", "leaflet.js"), "utf8").replace(/\n\/\/# sourceMappingURL=\S+\s*$/, "\n");
mkdirSync(out, { recursive: true });
writeFileSync(join(out, "leaflet.js"), js);
writeFileSync(join(out, "leaflet.css"), readFileSync(join(root, "dist", "leaflet.css"), "utf8"));
writeFileSync(join(out, "LICENSE"), readFileSync(join(root, "LICENSE"), "utf8"));
writeFileSync(join(out, "VERSION"), `${version}\n`);
console.log(`leaflet ${version} written: ${out}`);
