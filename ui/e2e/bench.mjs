// Browser upload benchmark: signs in, picks FILE for the data node NODE of
// clean room DCR, and times "Encrypt and upload" until the dataset is
// published, in a chromium driven through a bare DevTools pipe (cdp.mjs
// says why not Playwright). It samples the page's JavaScript heap (after
// a garbage collection) and the resident memory of all the browser's
// processes before, during and after, and the CPU time those processes
// and the server spent on the upload, and prints one JSON line, with the time each phase
// of the progress bar was first seen (phases).
// env: CLEANROOM_URL, EMAIL, TOKEN, DCR, NODE, FILE, SERVER_PID.

import { readFileSync, readdirSync, statSync } from "node:fs";
import { evaluate, launchBare, waitFor } from "./cdp.mjs";
import { env } from "./lib.mjs";

/** browserUsage returns the resident memory (bytes) and the CPU time so
 * far (seconds, every thread's, ended ones included) of every process of
 * the browser this script started (its descendants): the workers, their
 * buffers and the browser's copies of the parts included. */
function browserUsage() {
  const parent = new Map();
  const usage = new Map();
  for (const pid of readdirSync("/proc").filter((p) => /^\d+$/.test(p))) {
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1].split(" ");
      parent.set(pid, stat[1]);
      usage.set(pid, { rss: Number(stat[21]) * 4096, cpu: (Number(stat[11]) + Number(stat[12])) / CLOCK_TICKS });
    } catch {
      /* gone */
    }
  }
  const mine = (pid) => {
    for (let p = parent.get(pid); p && p !== "0"; p = parent.get(p)) if (p === String(process.pid)) return true;
    return false;
  };
  const sum = { rss: 0, cpu: 0 };
  for (const [pid, u] of usage) if (mine(pid)) [sum.rss, sum.cpu] = [sum.rss + u.rss, sum.cpu + u.cpu];
  return sum;
}

/** The unit of CPU times in /proc/<pid>/stat (USER_HZ, 100 on Linux). */
const CLOCK_TICKS = 100;

/** serverCPU returns the CPU time the server (env SERVER_PID) has spent. */
function serverCPU() {
  const stat = readFileSync(`/proc/${env("SERVER_PID")}/stat`, "utf8").split(") ")[1].split(" ");
  return (Number(stat[11]) + Number(stat[12])) / CLOCK_TICKS;
}

const base = env("CLEANROOM_URL");
const file = env("FILE");
const card = `document.querySelector('[data-node=${JSON.stringify(env("NODE"))}]')`;
const s = await launchBare();
try {
  // Sign in as the sign-in form does, then open the clean room.
  await s.send("Page.navigate", { url: base + "/" });
  await waitFor(s, `document.readyState === "complete"`);
  const signIn = `fetch("/api/v1/session", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(${JSON.stringify({ email: env("EMAIL"), token: env("TOKEN") })}) }).then((r) => r.status)`;
  const signedIn = await evaluate(s, signIn);
  if (signedIn !== 201) throw new Error(`sign-in: ${signedIn}`);
  await s.send("Page.navigate", { url: `${base}/dcrs/${env("DCR")}` });
  await waitFor(s, `${card}?.querySelector('input[type="file"]')`);
  const heap = async (gc) => {
    if (gc) await s.send("HeapProfiler.collectGarbage");
    return (await s.send("Runtime.getHeapUsage")).usedSize;
  };
  const before = await heap(true);
  const { rss: rssBefore } = browserUsage();
  const status = `${card}.querySelector('[data-testid="dataset-status"]').innerText`;
  const was = await evaluate(s, status);
  const { root } = await s.send("DOM.getDocument");
  const { nodeId } = await s.send("DOM.querySelector", { nodeId: root.nodeId, selector: `[data-node=${JSON.stringify(env("NODE"))}] input[type="file"]` });
  await s.send("DOM.setFileInputFiles", { nodeId, files: [file] });
  const button = `[...${card}.querySelectorAll("button")].find((b) => b.textContent.trim() === "Encrypt and upload")`;
  await waitFor(s, `!${button}.disabled`);
  const finished = `(${status}) !== ${JSON.stringify(was)} && (${status}).includes("published by") || ${card}.querySelector(".error")`;
  await evaluate(s, `void (window.uploadDone = new Promise((done) => new MutationObserver(() => (${finished}) && done()).observe(${card}, { subtree: true, childList: true, characterData: true })))`);
  const start = performance.now();
  let peak = before;
  let rssPeak = rssBefore;
  let sampling = true;
  const phases = {};
  // One cheap sample every 200 ms: the harness's own work shares the CPU
  // with the upload.
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await heap(false));
      rssPeak = Math.max(rssPeak, browserUsage().rss);
      const p = await evaluate(s, `${card}.querySelector(".progress label")?.textContent ?? ""`);
      if (p) phases[p] ??= (performance.now() - start) / 1000;
      await new Promise((r) => setTimeout(r, 200));
    }
  })();
  const [cpuBefore, serverBefore] = [browserUsage().cpu, serverCPU()];
  await evaluate(s, `${button}.click()`);
  // The page says when it is done: a published dataset or an error (no
  // polling, which would add up to its interval to the time).
  await Promise.race([evaluate(s, `window.uploadDone`), new Promise((_, fail) => setTimeout(() => fail(new Error("the upload did not finish within 10 minutes")), 10 * 60 * 1000).unref())]);
  const seconds = (performance.now() - start) / 1000;
  const [cpuSeconds, serverSeconds] = [browserUsage().cpu - cpuBefore, serverCPU() - serverBefore];
  sampling = false;
  await sampler;
  const errors = await evaluate(s, `[...${card}.querySelectorAll(".error")].map((e) => e.innerText)`);
  if (errors.length) throw new Error(errors.join("\n"));
  const after = await heap(true);
  const { rss: rssAfter } = browserUsage();
  console.log(JSON.stringify({ bytes: statSync(file).size, seconds, cpu_seconds: cpuSeconds, server_cpu_seconds: serverSeconds, heap_before: before, heap_peak: peak, heap_after: after, rss_before: rssBefore, rss_peak: rssPeak, rss_after: rssAfter, phases }));
} finally {
  await s.close();
}
