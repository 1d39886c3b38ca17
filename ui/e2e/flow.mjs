// The seed's flow ("Create a Python computation in the UI") with three
// users in three browser contexts: the owner writes and publishes the
// clean room, the data owner uploads a file encrypted in the browser, the
// analyst runs the computation and downloads its zip. The Go test that
// starts this (cmd/cleanroom/ui_test.go) checks the zip and that the
// server never saw the plaintext.
//
// env: CLEANROOM_URL, OWNER/DATA/ANALYST_EMAIL and _TOKEN, SCREENSHOTS
// (a directory), OUT (where the downloaded zip and facts go), EVIL_URL (a
// page on another origin, for the cross-origin check).

import { writeFileSync } from "node:fs";
import path from "node:path";
import { assert, env, launch, log, screenshotter, signIn, watchPage } from "./lib.mjs";

const base = env("CLEANROOM_URL");
const out = env("OUT");
const shot = screenshotter(env("SCREENSHOTS"));
const owner = { email: env("OWNER_EMAIL"), token: env("OWNER_TOKEN") };
const dataOwner = { email: env("DATA_EMAIL"), token: env("DATA_TOKEN") };
const analyst = { email: env("ANALYST_EMAIL"), token: env("ANALYST_TOKEN") };
const PLAINTEXT = process.env.PLAINTEXT || "hello world";
const problems = [];
const viewport = { width: 1280, height: 800 };

const browser = await launch();
try {
  // ---- the owner builds the clean room ----
  const ownerCtx = await browser.newContext({ viewport, acceptDownloads: true });
  await ownerCtx.grantPermissions(["clipboard-read", "clipboard-write"], { origin: base });
  const op = await ownerCtx.newPage();
  watchPage(op, "owner", problems);
  await op.goto(base + "/");
  await shot(op, "sign-in");
  await signIn(op, base, owner.email, owner.token);
  const cookies = await ownerCtx.cookies();
  const sess = cookies.find((c) => c.name === "cleanroom_session");
  assert(sess && sess.httpOnly && sess.sameSite === "Strict", `session cookie flags: ${JSON.stringify(sess)}`);
  assert(!(await op.evaluate(() => JSON.stringify(localStorage) + JSON.stringify(sessionStorage))).includes(owner.token), "the token is in web storage");

  await op.getByLabel("New clean room name").fill("Secure Uppercase");
  await op.getByRole("button", { name: "Create clean room" }).click();
  await op.getByLabel("Clean room name").waitFor();

  // Data: a required raw data node.
  await op.getByRole("form", { name: "Add data node" }).getByLabel("Name").fill("input_data_node");
  await op.getByRole("button", { name: "Add data node" }).click();
  await op.locator('[data-node="input_data_node"]').waitFor();
  await shot(op, "data-node");

  // Computations: a Python computation that depends on it through the file browser.
  await op.getByRole("tab", { name: "Computations" }).click();
  await op.getByLabel("Computation name").fill("uppercase_text_node");
  await op.getByRole("button", { name: "Add computation" }).click();
  const browserPane = op.getByRole("complementary", { name: "File browser" });
  await browserPane.getByLabel(/input_data_node/).check();
  await browserPane.getByRole("button", { name: "Copy snippet for /input/input_data_node" }).click();
  // The copy lands on the clipboard asynchronously: read until it has.
  let snippet = "";
  for (const deadline = Date.now() + 10000; snippet === "" && Date.now() < deadline; ) {
    snippet = await op.evaluate(() => navigator.clipboard.readText());
  }
  assert(snippet.includes('open("/input/input_data_node"'), `copied snippet: ${snippet}`);
  await shot(op, "file-browser");

  // Main script: paste the snippet, then the lines that uppercase it and
  // read the static file.
  const editor = op.locator('.cm-content[aria-label="uppercase_text_node main script"]');
  await editor.click();
  await op.keyboard.press("Control+V");
  await op.waitForFunction(() => document.querySelector(".cm-content")?.textContent?.includes("/input/input_data_node"));
  // The rest of the script goes in as one insertion, which the editor
  // takes as typed text without re-indenting it.
  await op.keyboard.press("Control+End");
  await op.keyboard.insertText(
    ['with open("/input/code/suffix.txt") as f:', "    suffix = f.read().strip()", 'with open("/output/uppercase.txt", "w") as f:', "    f.write(input_data_node.upper() + suffix)", ""].join("\n"),
  );

  // Test all computations before the static file exists: the test fails,
  // with the traceback, and the failing line is marked in the editor.
  await op.getByRole("button", { name: "Test all computations" }).click();
  const failed = op.locator('.computation [data-status="failed"]');
  await failed.waitFor({ timeout: 120000 });
  const failure = await failed.innerText();
  assert(/FileNotFoundError|No such file/.test(failure), `failed test shows: ${failure}`);
  await op.locator('.cm-error-line[data-error-line="3"]').waitFor(); // marked after the result renders
  await shot(op, "test-failed");

  // A static file the script reads: "+" beside the Main script tab.
  await op.getByRole("button", { name: "Add static file" }).click();
  await op.getByLabel("File name").fill("suffix.txt");
  await op.getByRole("button", { name: "Add file" }).click();
  await op.locator('.cm-content[aria-label="static file suffix.txt"]').click();
  await op.keyboard.insertText("!");
  await op.getByRole("tab", { name: "Main script" }).click();
  const script = await op.evaluate(() => [...document.querySelectorAll('.cm-content[aria-label="uppercase_text_node main script"] .cm-line')].map((l) => l.textContent).join("\n"));
  log("script:", script);
  await shot(op, "main-script");

  // Participants: the data owner and the analyst; logs on error.
  await op.getByRole("tab", { name: "Participants" }).click();
  for (const email of [dataOwner.email, analyst.email]) {
    await op.getByLabel("Participant email").fill(email);
    await op.getByRole("button", { name: "Add participant" }).click();
  }
  await op.locator(`[data-participant="${dataOwner.email}"]`).getByLabel("input_data_node").check();
  await op.locator(`[data-participant="${analyst.email}"]`).getByLabel("uppercase_text_node").check();
  await op.locator('[data-policy="uppercase_text_node"]').getByLabel("Logs on error").check();
  await op.getByText("All changes saved").waitFor();
  await shot(op, "participants");

  // Test all computations.
  await op.getByRole("tab", { name: "Computations" }).click();
  await op.getByRole("button", { name: "Test all computations" }).click();
  const result = op.locator('.computation [data-status="ok"]');
  try {
    await result.waitFor({ timeout: 120000 });
  } finally {
    await shot(op, "test-all");
  }

  // Encrypt and publish.
  await op.getByRole("button", { name: "Encrypt and publish" }).click();
  const idEl = op.getByTestId("published-id");
  await idEl.waitFor();
  const dcrID = (await idEl.innerText()).trim();
  assert(/^[0-9a-f]{64}$/.test(dcrID), `published id ${dcrID}`);
  assert(await op.getByLabel("Clean room name").evaluate((e) => e.readOnly), "the published draft is editable");
  await shot(op, "published");
  log("published", dcrID);

  // ---- the data owner uploads "hello world" from a file ----
  const dataCtx = await browser.newContext({ viewport });
  const dp = await dataCtx.newPage();
  watchPage(dp, "data owner", problems);
  await signIn(dp, base, dataOwner.email, dataOwner.token);
  await dp.getByRole("link", { name: "Secure Uppercase" }).click();
  await dp.getByTestId("dcr-id").waitFor();
  await dp.getByTestId("enclave-mode").getByText("software mode").waitFor(); // fetched after the room
  assert((await dp.getByRole("button", { name: "Run" }).count()) === 0, "the data owner sees a Run button");
  const node = dp.locator('[data-node="input_data_node"]');
  await node.getByLabel("Choose a file to upload").setInputFiles({ name: "my-data.txt", mimeType: "text/plain", buffer: Buffer.from(PLAINTEXT) });
  await node.getByRole("button", { name: "Encrypt and upload" }).click();
  await node.getByText("Dataset published by").waitFor({ timeout: 60000 });
  await shot(dp, "uploaded");
  // A forged run request from the data owner's own session is refused.
  const forgedRun = await dp.evaluate(async (id) => {
    const s = await (await fetch("/api/v1/session")).json();
    const r = await fetch(`/api/v1/dcrs/${id}/nodes/uppercase_text_node/jobs`, { method: "POST", headers: { "X-Cleanroom-CSRF": s.csrf_token } });
    return r.status;
  }, dcrID);
  assert(forgedRun === 403, `forged run by the data owner: ${forgedRun}`);

  // ---- the analyst runs it and downloads the zip ----
  const anCtx = await browser.newContext({ viewport, acceptDownloads: true });
  const ap = await anCtx.newPage();
  watchPage(ap, "analyst", problems);
  await signIn(ap, base, analyst.email, analyst.token);
  await ap.goto(`${base}/dcrs/${dcrID}`);
  await ap.getByTestId("dcr-id").waitFor();
  assert((await ap.getByRole("button", { name: "Encrypt and upload" }).count()) === 0, "the analyst sees an upload button");
  assert((await ap.getByLabel("Choose a file to upload").count()) === 0, "the analyst sees a file input");
  const forgedUpload = await ap.evaluate(async (id) => {
    const s = await (await fetch("/api/v1/session")).json();
    const r = await fetch(`/api/v1/dcrs/${id}/nodes/input_data_node/dataset`, { method: "DELETE", headers: { "X-Cleanroom-CSRF": s.csrf_token } });
    return r.status;
  }, dcrID);
  assert(forgedUpload === 403, `forged dataset removal by the analyst: ${forgedUpload}`);
  const comp = ap.locator('[data-node="uppercase_text_node"]');
  await comp.getByRole("button", { name: "Run" }).click();
  const states = new Set();
  const stateEl = comp.getByTestId("job-state");
  for (const deadline = Date.now() + 120000; Date.now() < deadline; ) {
    const s = (await stateEl.innerText().catch(() => "")).trim();
    if (s) states.add(s);
    if (["succeeded", "failed", "cancelled"].includes(s)) break;
    await ap.waitForTimeout(50);
  }
  log("job states seen:", [...states]);
  assert(states.has("succeeded"), `the job did not succeed: ${[...states]} ${await comp.innerText()}`);
  await shot(ap, "run");
  const [download] = await Promise.all([ap.waitForEvent("download"), comp.getByRole("button", { name: "Download uppercase_text_node.zip" }).first().click()]);
  assert(download.suggestedFilename() === "uppercase_text_node.zip", `download name ${download.suggestedFilename()}`);
  await download.saveAs(path.join(out, "uppercase_text_node.zip"));

  // The audit log shows what the three did, checked in this browser.
  await ap.getByRole("button", { name: "Refresh the audit log" }).click();
  const audit = ap.getByRole("region", { name: "Audit log" });
  await audit.getByText("downloaded a result").waitFor();
  const auditStatus = await audit.getByTestId("audit-status").innerText();
  assert(/^5 entries, each chained to the one before; checked in this browser, and it still holds entry [1-5] this browser verified before/.test(auditStatus), `audit log status: ${auditStatus}`);
  const auditRows = await audit.locator("tbody tr").allInnerTexts();
  const expected = [[owner.email, "published the clean room"], [dataOwner.email, "published a dataset"], [analyst.email, "ran the computation"], ["enclave", "a run ended"], [analyst.email, "downloaded a result"]];
  assert(auditRows.length === expected.length && expected.every(([who, what], i) => auditRows[i].includes(who) && auditRows[i].includes(what)), `audit log rows:\n${auditRows.join("\n")}`);
  await shot(ap, "audit");

  // Phone width: the overview stays readable.
  await ap.setViewportSize({ width: 390, height: 844 });
  await shot(ap, "phone-overview", { fullPage: true });

  // ---- cross-site requests with the owner's cookie are refused ----
  const evil = process.env.EVIL_URL;
  if (evil) {
    const ep = await ownerCtx.newPage();
    await ep.goto(evil);
    const evilStatus = await ep.evaluate(async (api) => {
      const body = JSON.stringify({ name: "forged by another origin", owner: "x@example.com", nodes: [], participants: [] });
      // no-cors: the browser sends it with the cookie but lets the page read nothing.
      await fetch(api + "/api/v1/drafts", { method: "POST", mode: "no-cors", credentials: "include", body });
      // With CORS the browser blocks the answer; the request still reaches the server.
      try {
        await fetch(api + "/api/v1/drafts", { method: "POST", credentials: "include", headers: { "Content-Type": "application/json", "X-Cleanroom-CSRF": "guess" }, body });
      } catch {}
      return "sent";
    }, base);
    log("cross-origin requests", evilStatus);
    await ep.close();
    const drafts = await op.evaluate(async () => (await fetch("/api/v1/drafts")).json());
    assert(!drafts.some((d) => d.definition.name === "forged by another origin"), "a cross-origin request created a draft");
  }

  // ---- sign-out: the old cookie is refused afterwards ----
  await op.goto(base + "/");
  await op.getByRole("button", { name: "Sign out" }).click();
  await op.getByRole("heading", { name: "Sign in" }).waitFor();
  const after = await fetch(base + "/api/v1/me", { headers: { Cookie: `cleanroom_session=${sess.value}` } });
  assert(after.status === 401, `old cookie after sign-out: ${after.status}`);

  writeFileSync(path.join(out, "facts.json"), JSON.stringify({ dcrID, states: [...states], script }));
  assert(problems.length === 0, problems.join("\n"));
  log("flow ok");
} finally {
  await browser.close();
}
