// Cross-implementation crypto test, in headless Chromium: the UI's crypto
// code (bundled as the UI bundles it) runs the shared vectors, decrypts a
// ciphertext Go made, and encrypts and seals one for Go to check.
// Usage: node e2e/crypto.mjs DIR, with DIR/go.json and DIR/go.ct from the
// Go test (cmd/cleanroom/ui_test.go); writes DIR/browser.json and
// DIR/browser.ct.

import { createServer } from "node:http";
import { readFileSync, writeFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "vite";
import { assert, launch, log } from "./lib.mjs";

const here = path.dirname(fileURLToPath(import.meta.url));
const repo = path.resolve(here, "../..");
const dir = process.argv[2];
const goFacts = JSON.parse(readFileSync(path.join(dir, "go.json"), "utf8"));
const vectors = JSON.parse(readFileSync(path.join(repo, "crypt/testdata/vectors.json"), "utf8"));
const rfc = JSON.parse(readFileSync(path.join(repo, "crypt/testdata/rfc9180-a1.json"), "utf8"));

const outDir = path.join(dir, "bundle");
await build({
  configFile: false,
  logLevel: "warn",
  root: here,
  base: "/bundle/",
  build: { outDir, emptyOutDir: true, lib: { entry: path.join(here, "crypto-entry.ts"), formats: ["es"], fileName: "crypto" } },
  worker: { format: "es" },
});

const types = { ".js": "text/javascript", ".html": "text/html" };
const server = createServer((req, res) => {
  const url = new URL(req.url, "http://x");
  if (url.pathname === "/") {
    res.writeHead(200, { "Content-Type": "text/html" });
    res.end('<!doctype html><script type="module" src="/bundle/crypto.js"></script>');
    return;
  }
  const file = path.join(dir, path.normalize(url.pathname));
  try {
    const body = readFileSync(file);
    res.writeHead(200, { "Content-Type": types[path.extname(file)] ?? "application/octet-stream" });
    res.end(body);
  } catch {
    res.writeHead(404).end();
  }
});
await new Promise((r) => server.listen(0, "127.0.0.1", r));
const base = `http://127.0.0.1:${server.address().port}`;

const browser = await launch();
try {
  const page = await browser.newPage();
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  await page.goto(base + "/");
  await page.waitForFunction(() => window.cleanroomCrypto);
  const x25519 = await page.evaluate(async () => !!(await crypto.subtle.generateKey({ name: "X25519" }, false, ["deriveBits"])));
  assert(x25519, "Web Crypto X25519 missing");

  const g = await page.evaluate(() => window.cleanroomCrypto.checkGcm());
  log(`AES-GCM in pieces against Web Crypto's: ${g.checked} sizes checked, ${g.failures.length} differ`);
  assert(g.checked > 0 && g.failures.length === 0, `AES-GCM in pieces differs from Web Crypto's at: ${g.failures.join(", ")}`);

  const r = await page.evaluate(() => window.cleanroomCrypto.checkRead());
  log(`file reads that stall are started again: ${r.length ? r.join("; ") : "ok"}`);
  assert(r.length === 0, r.join("\n"));

  const v = await page.evaluate(([v, rfc]) => window.cleanroomCrypto.runVectors(v, rfc), [vectors, rfc]);
  log(`vectors: ${v.checked} checked, ${v.failures.length} failures`);
  assert(v.failures.length === 0, v.failures.join("\n"));

  const d = await page.evaluate(([k]) => window.cleanroomCrypto.decryptGo("/go.ct", k), [goFacts.key]);
  log(`Go ciphertext decrypted in the browser: ${d.size} bytes`);
  assert(d.sha256 === goFacts.plaintext_sha256 && d.size === goFacts.plaintext_size, `Go ciphertext decrypts to ${JSON.stringify(d)}`);

  const a = await page.evaluate(([dcr, log]) => window.cleanroomCrypto.checkAudit(dcr, log), [goFacts.dcr_id, goFacts.audit_log]);
  log(`Go's audit log checked in the browser: ${a.intact ?? "verifies"}; changed: ${a.changed}`);
  assert(a.intact === null && a.changed !== null, `the browser's audit check: intact log ${a.intact}, changed log ${a.changed}`);
  assert(a.rewrittenAlone === null && a.rewrittenPinned !== null, `a log rewritten hashes and all: alone ${a.rewrittenAlone}, against the entry kept ${a.rewrittenPinned}`);

  const e = await page.evaluate(([size, pub, dcr, node]) => window.cleanroomCrypto.encryptForGo(size, pub, dcr, node), [goFacts.browser_plaintext_size, goFacts.enclave_public_key, goFacts.dcr_id, goFacts.node]);
  writeFileSync(path.join(dir, "browser.ct"), Buffer.from(e.ciphertext, "base64"));
  writeFileSync(path.join(dir, "browser.json"), JSON.stringify({ manifest_hash: e.manifest_hash, key: e.key, sealed: e.sealed }));
  assert(errors.length === 0, errors.join("\n"));
  log("crypto ok");
} finally {
  await browser.close();
  server.close();
}
