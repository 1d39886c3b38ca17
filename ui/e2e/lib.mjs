// Shared by the browser tests: Debian's chromium driven by playwright-core.
import { chromium } from "playwright-core";
import { mkdirSync } from "node:fs";
import path from "node:path";

export const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";

export async function launch() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--disable-dev-shm-usage"],
  });
}

/** env returns a required environment variable. */
export function env(name) {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
}

/** screenshotter saves numbered screenshots of a step into dir. */
export function screenshotter(dir) {
  mkdirSync(dir, { recursive: true });
  let n = 0;
  return async (page, name, opts = {}) => {
    n++;
    const file = path.join(dir, `${String(n).padStart(2, "0")}-${name}.png`);
    await page.screenshot({ path: file, ...opts });
    log(`screenshot ${file}`);
  };
}

export function log(...args) {
  console.log(`[${new Date().toISOString().slice(11, 23)}]`, ...args);
}

export function assert(cond, msg) {
  if (!cond) throw new Error(`assertion failed: ${msg}`);
}

/** signIn fills the sign-in form in page. */
export async function signIn(page, base, email, token) {
  await page.goto(base + "/");
  await page.getByLabel("Email").fill(email);
  await page.getByLabel("API token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  await page.getByRole("heading", { name: "Clean rooms" }).waitFor();
}

/** watchPage fails the test on page errors and CSP violations. */
export function watchPage(page, who, problems) {
  page.on("pageerror", (e) => problems.push(`${who}: page error: ${e.message}`));
  page.on("console", (m) => {
    if (m.type() === "error" && /Content Security Policy|Refused to/.test(m.text())) problems.push(`${who}: ${m.text()}`);
  });
}
