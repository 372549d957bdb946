// Copy the Swagger UI assets of the API docs page (/docs) from the npm package swagger-ui-dist (Apache-2.0)
// into the package, so that /docs works offline. Run by the install step: `npm ci && npm run swagger`.
//
// Output: src/forewarn/web/swagger/{swagger-ui-bundle.js, swagger-ui.css, favicon-32x32.png, LICENSE}.
import { copyFileSync, mkdirSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const require = createRequire(import.meta.url);
const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "swagger");
const dist = dirname(require.resolve("swagger-ui-dist/package.json"));

mkdirSync(out, { recursive: true });
for (const name of ["swagger-ui-bundle.js", "swagger-ui.css", "favicon-32x32.png", "LICENSE"]) {
  copyFileSync(join(dist, name), join(out, name));
}
console.log(`swagger ui written: ${out}`);
