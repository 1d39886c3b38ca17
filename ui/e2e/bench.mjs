// Browser upload benchmark: signs in, picks FILE for the data node NODE of
// clean room DCR, and times "Encrypt and upload" until the dataset is
// published, sampling the page's JavaScript heap (after a garbage
// collection) before, during and after. Prints one JSON line, with the
// time each phase of the progress bar was first seen (phases).
// env: CLEANROOM_URL, EMAIL, TOKEN, DCR, NODE, FILE.

import { statSync } from "node:fs";
import { env, launch, signIn } from "./lib.mjs";

const base = env("CLEANROOM_URL");
const file = env("FILE");
const node = env("NODE");
const browser = await launch();
try {
  const ctx = await browser.newContext({ viewport: { width: 1280, height: 800 } });
  const page = await ctx.newPage();
  await signIn(page, base, env("EMAIL"), env("TOKEN"));
  await page.goto(`${base}/dcrs/${env("DCR")}`);
  const card = page.locator(`[data-node="${node}"]`);
  await card.waitFor();
  const cdp = await ctx.newCDPSession(page);
  const heap = async (gc) => {
    if (gc) await cdp.send("HeapProfiler.collectGarbage");
    return (await cdp.send("Runtime.getHeapUsage")).usedSize;
  };
  const before = await heap(true);
  const status = card.getByTestId("dataset-status");
  const was = await status.innerText();
  await card.locator('input[type="file"]').setInputFiles(file);
  const start = performance.now();
  let peak = before;
  let sampling = true;
  const phases = {};
  const sampler = (async () => {
    while (sampling) {
      peak = Math.max(peak, await heap(false));
      const p = await card.locator(".progress label").innerText({ timeout: 100 }).catch(() => "");
      if (p) phases[p.split("\n")[0]] ??= (performance.now() - start) / 1000;
      await new Promise((r) => setTimeout(r, 50));
    }
  })();
  await card.getByRole("button", { name: "Encrypt and upload" }).click();
  await page.waitForFunction(([el, was]) => el.innerText !== was && el.innerText.includes("published by"), [await status.elementHandle(), was], { timeout: 30 * 60 * 1000, polling: 100 });
  const seconds = (performance.now() - start) / 1000;
  sampling = false;
  await sampler;
  const errors = await card.locator(".error").allInnerTexts();
  if (errors.length) throw new Error(errors.join("\n"));
  const after = await heap(true);
  console.log(JSON.stringify({ bytes: statSync(file).size, seconds, heap_before: before, heap_peak: peak, heap_after: after, phases }));
} finally {
  await browser.close();
}
