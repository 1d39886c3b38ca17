// A bare DevTools client: Debian's chromium over --remote-debugging-pipe,
// with only the protocol domains a caller uses. Playwright turns on
// network tracking in every page and worker, which costs every request
// extra work (and makes a fetch whose body is bytes crawl at ~20 MB/s):
// the upload benchmark (bench.mjs) uses this client instead, so that it
// measures what users get.

import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import os from "node:os";
import path from "node:path";
import { CHROMIUM } from "./lib.mjs";

/** launchBare starts a headless chromium and returns a session on a new
 * page: send(method, params) and close(). */
export async function launchBare() {
  const profile = mkdtempSync(path.join(os.tmpdir(), "cleanroom-chromium-"));
  const proc = spawn(
    CHROMIUM,
    ["--headless", "--remote-debugging-pipe", `--user-data-dir=${profile}`, "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage", "about:blank"],
    { stdio: ["ignore", "ignore", "pipe", "pipe", "pipe"] },
  );
  let stderr = "";
  proc.stderr.on("data", (d) => (stderr = (stderr + d).slice(-4000)));
  const [toBrowser, fromBrowser] = [proc.stdio[3], proc.stdio[4]];
  let nextID = 1;
  const pending = new Map();
  let buf = "";
  fromBrowser.on("data", (d) => {
    buf += d;
    for (let i; (i = buf.indexOf("\0")) >= 0; ) {
      const msg = JSON.parse(buf.slice(0, i));
      buf = buf.slice(i + 1);
      const p = pending.get(msg.id);
      if (!p) continue;
      pending.delete(msg.id);
      if (msg.error) p.reject(new Error(`${p.method}: ${msg.error.message}`));
      else p.resolve(msg.result);
    }
  });
  const exited = new Promise((r) => proc.on("exit", r));
  proc.on("exit", () => {
    for (const p of pending.values()) p.reject(new Error(`chromium exited: ${stderr}`));
    pending.clear();
  });
  const call = (method, params = {}, sessionId) =>
    new Promise((resolve, reject) => {
      const id = nextID++;
      pending.set(id, { resolve, reject, method });
      toBrowser.write(JSON.stringify({ id, method, params, ...(sessionId ? { sessionId } : {}) }) + "\0");
    });

  const { targetId } = await call("Target.createTarget", { url: "about:blank" });
  const { sessionId } = await call("Target.attachToTarget", { targetId, flatten: true });
  return {
    send: (method, params) => call(method, params, sessionId),
    async close() {
      await call("Browser.close").catch(() => {});
      await Promise.race([exited, new Promise((r) => setTimeout(r, 5000))]);
      proc.kill();
      rmSync(profile, { recursive: true, force: true });
    },
  };
}

/** evaluate runs an expression in the page and returns its value. */
export async function evaluate(s, expression) {
  const r = await s.send("Runtime.evaluate", { expression, awaitPromise: true, returnByValue: true });
  if (r.exceptionDetails) throw new Error(`${expression}: ${r.exceptionDetails.exception?.description ?? r.exceptionDetails.text}`);
  return r.result.value;
}

/** waitFor evaluates expression every interval ms until it is truthy. */
export async function waitFor(s, expression, timeout = 30000, interval = 50) {
  for (const deadline = Date.now() + timeout; ; ) {
    if (await evaluate(s, `!!(${expression})`).catch(() => false)) return;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${expression}`);
    await new Promise((r) => setTimeout(r, interval));
  }
}
