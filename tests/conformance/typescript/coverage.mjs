// Every operation of openapi/openapi.json must be called in client.ts (`mfa.GET("/path"`),
// so the type check covers the whole spec, not the few calls someone remembered to write.
// Usage: node coverage.mjs [openapi.json] [client.ts]; exits 1 naming what is missing.
import { readFileSync } from "node:fs";

const [specPath = "../../../openapi/openapi.json", clientPath = "client.ts"] = process.argv.slice(2);
const spec = JSON.parse(readFileSync(specPath, "utf8"));
// Comments do not count as calls.
const client = readFileSync(clientPath, "utf8")
  .replace(/\/\*[\s\S]*?\*\//g, "")
  .replace(/\/\/.*$/gm, "");
const called = new Set(
  [...client.matchAll(/\bmfa\.(GET|PUT|POST|DELETE|PATCH|HEAD|OPTIONS)\(\s*"([^"]+)"/g)].map(
    ([, method, path]) => `${method} ${path}`,
  ),
);
const methods = ["get", "put", "post", "delete", "patch", "head", "options"];
const operations = Object.entries(spec.paths).flatMap(([path, item]) =>
  methods.filter((m) => m in item).map((m) => `${m.toUpperCase()} ${path}`),
);
const missing = operations.filter((op) => !called.has(op));
if (operations.length === 0 || missing.length > 0) {
  console.error(`typescript: ${missing.length} of ${operations.length} operations are not called in ${clientPath}:`);
  for (const op of missing) console.error(`  ${op}`);
  process.exit(1);
}
console.log(`typescript: client.ts calls all ${operations.length} operations of the spec`);
