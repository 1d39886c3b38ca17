// The editor beyond Python, with three users in three browser contexts:
// the owner builds a table node (one column hashed, one unique) with a
// test dataset and SQL, Python and R
// computations, sees the Python computation's output file appear in the
// file browser after "Test all computations", and publishes; the data
// owner uploads a bad CSV and reads the validation report naming its line
// and column, then a good one; the analyst runs the SQL and the R
// computations and downloads their zips. The Go test that starts this
// (cmd/cleanroom/ui_test.go) checks the zips.
//
// env: CLEANROOM_URL, OWNER/DATA/ANALYST_EMAIL and _TOKEN, SCREENSHOTS
// (a directory), OUT (where the downloaded zips go), GOOD_CSV, BAD_CSV
// (the data owner's files), TEST_CSV (the draft's test dataset).

import path from "node:path";
import { assert, env, launch, log, screenshotter, signIn, watchPage } from "./lib.mjs";

const base = env("CLEANROOM_URL");
const out = env("OUT");
const shot = screenshotter(env("SCREENSHOTS"));
const owner = { email: env("OWNER_EMAIL"), token: env("OWNER_TOKEN") };
const dataOwner = { email: env("DATA_EMAIL"), token: env("DATA_TOKEN") };
const analyst = { email: env("ANALYST_EMAIL"), token: env("ANALYST_TOKEN") };
const problems = [];
const viewport = { width: 1280, height: 800 };

const scripts = {
  adults: "SELECT name, age FROM people WHERE age >= 18 ORDER BY name",
  ages: ["import csv", 'with open("/input/people/dataset.csv") as f:', "    rows = list(csv.reader(f))", 'with open("/output/ages.csv", "w") as f:', '    f.write("age\\n")', "    for name, age in rows:", '        f.write(age + "\\n")', ""].join("\n"),
  r_stats: ['ages <- read.csv("/input/ages/ages.csv")', 'writeLines(format(mean(ages$age)), "/output/mean.txt")', 'cat("mean age:", mean(ages$age), "\\n")', ""].join("\n"),
};

const browser = await launch();
const pages = {};
try {
  // ---- the owner builds the clean room ----
  const op = (pages.owner = await (await browser.newContext({ viewport })).newPage());
  watchPage(op, "owner", problems);
  await signIn(op, base, owner.email, owner.token);
  await op.getByLabel("New clean room name").fill("Ages");
  await op.getByRole("button", { name: "Create clean room" }).click();
  await op.getByLabel("Clean room name").waitFor();

  // A table node, name and age, with a test dataset.
  const addNode = op.getByRole("form", { name: "Add data node" });
  await addNode.getByLabel("Name").fill("people");
  await addNode.getByLabel("Type").selectOption("table");
  await op.getByRole("button", { name: "Add data node" }).click();
  const people = op.locator('[data-node="people"]');
  await people.getByLabel("Column 1 name").fill("name");
  await people.getByRole("button", { name: "Add column" }).click();
  await people.getByLabel("Column 2 name").fill("age");
  await people.getByLabel("Column 2 type").selectOption("INTEGER");
  // Names reach computations hashed, and no two rows may share one.
  await people.getByLabel("Column 1 hashed").check();
  await people.getByRole("button", { name: "Add unique combination" }).click();
  const combo = people.getByRole("group", { name: "Unique combination 1" });
  await combo.getByLabel("name").check();
  // A renamed column stays in its combination.
  await people.getByLabel("Column 1 name").fill("who");
  assert(await combo.getByLabel("who").isChecked(), "the unique combination lost its column when it was renamed");
  await people.getByLabel("Column 1 name").fill("name");
  assert(await combo.getByLabel("name").isChecked() && !(await combo.getByLabel("age").isChecked()), `the unique combination after renaming back: ${await combo.innerText()}`);
  await people.getByLabel(/Test dataset/).setInputFiles({ name: "people.csv", mimeType: "text/csv", buffer: Buffer.from(env("TEST_CSV")) });
  await people.getByText("Test dataset attached").waitFor();
  await shot(op, "table-node");

  // Three computations, their inputs ticked in the file browser.
  await op.getByRole("tab", { name: "Computations" }).click();
  const files = op.getByRole("complementary", { name: "File browser" });
  for (const [name, kind, dep] of [
    ["adults", "sql", "people"],
    ["ages", "python", "people"],
    ["r_stats", "r", "ages"],
  ]) {
    const form = op.getByRole("form", { name: "Add computation" });
    await form.getByLabel("Type").selectOption(kind);
    await form.getByLabel("Computation name").fill(name);
    await op.getByRole("button", { name: "Add computation" }).click();
    await files.getByLabel(new RegExp(`^${dep}`)).check();
    await op.locator(`.cm-content[aria-label="${name} main script"]`).click();
    await op.keyboard.insertText(scripts[name]);
  }
  // The R computation reads what the Python one writes: its files are
  // known only once a test has run.
  const agesFiles = files.locator('[data-dependency="ages"]');
  await agesFiles.getByText("Run “Test all computations” to list the files it writes.").waitFor();
  await op.getByRole("button", { name: "Test all computations" }).click();
  const list = op.getByRole("navigation", { name: "Computations" });
  try {
    for (const name of Object.keys(scripts)) await list.getByRole("button", { name: new RegExp(`^${name} `) }).locator(".badge.ok").waitFor({ timeout: 120000 });
  } finally {
    await shot(op, "editor-test-all");
  }
  await agesFiles.getByText("/input/ages/ages.csv").waitFor();
  await op.locator('.computation [data-status="ok"]').waitFor(); // r_stats's test result
  await shot(op, "python-output-in-file-browser");

  // Participants, then publish.
  await op.getByRole("tab", { name: "Participants" }).click();
  for (const email of [dataOwner.email, analyst.email]) {
    await op.getByLabel("Participant email").fill(email);
    await op.getByRole("button", { name: "Add participant" }).click();
  }
  await op.locator(`[data-participant="${dataOwner.email}"]`).getByLabel("people").check();
  // The data owner is an analyst of r_stats too: it sees the analyst's runs, not their results.
  await op.locator(`[data-participant="${dataOwner.email}"]`).getByLabel("r_stats").check();
  for (const name of ["adults", "r_stats"]) await op.locator(`[data-participant="${analyst.email}"]`).getByLabel(name).check();
  await op.locator('[data-policy="r_stats"]').getByLabel("Logs on success").check();
  await op.getByText("All changes saved").waitFor();
  await op.getByRole("button", { name: "Encrypt and publish" }).click();
  const dcrID = (await op.getByTestId("published-id").innerText()).trim();
  log("published", dcrID);

  // ---- the data owner: a bad CSV, its report, then a good one ----
  const dp = (pages.data = await (await browser.newContext({ viewport })).newPage());
  watchPage(dp, "data owner", problems);
  await signIn(dp, base, dataOwner.email, dataOwner.token);
  await dp.goto(`${base}/dcrs/${dcrID}`);
  const card = dp.locator('[data-node="people"]');
  // The agreement says what is hashed and what must be unique.
  const columns = await card.getByTestId("columns").innerText();
  assert(columns.includes("name (STRING, hashed: computations see its SHA-256)") && columns.includes("Unique together: name."), `the published table node says: ${columns}`);
  await card.getByLabel("Choose a file to upload").setInputFiles({ name: "people.csv", mimeType: "text/csv", buffer: Buffer.from(env("BAD_CSV")) });
  await card.getByRole("button", { name: "Encrypt and upload" }).click();
  const report = card.getByRole("region", { name: "Validation report of people" });
  await report.getByText(/^Invalid:/).waitFor({ timeout: 60000 });
  const problem = await report.locator("li").first().innerText();
  assert(/^line 2, column age \(“old”\): .*integer/.test(problem), `the report says: ${problem}`);
  await shot(dp, "validation-report");
  await card.getByLabel("Replace the dataset with a file").setInputFiles({ name: "people.csv", mimeType: "text/csv", buffer: Buffer.from(env("GOOD_CSV")) });
  await card.getByRole("button", { name: "Encrypt and upload" }).click();
  await report.getByText(/^Valid: 4 rows, 2 columns/).waitFor({ timeout: 60000 });

  // ---- the analyst runs the SQL and the R computations ----
  const anCtx = await browser.newContext({ viewport, acceptDownloads: true });
  const ap = (pages.analyst = await anCtx.newPage());
  watchPage(ap, "analyst", problems);
  await signIn(ap, base, analyst.email, analyst.token);
  await ap.goto(`${base}/dcrs/${dcrID}`);
  for (const name of ["adults", "r_stats"]) {
    const comp = ap.locator(`[data-node="${name}"]`);
    await comp.getByRole("button", { name: "Run" }).click();
    const state = comp.getByTestId("job-state");
    await ap.waitForFunction((el) => ["succeeded", "failed", "cancelled"].includes(el.innerText.trim()), await state.elementHandle(), { timeout: 120000, polling: 100 });
    assert((await state.innerText()).trim() === "succeeded", `${name}: ${await comp.innerText()}`);
    const [download] = await Promise.all([ap.waitForEvent("download"), comp.getByRole("button", { name: `Download ${name}.zip` }).first().click()]);
    await download.saveAs(path.join(out, `${name}.zip`));
  }
  // Logs, where the policy shows them, come sealed to the page too.
  const rStats = ap.locator('[data-node="r_stats"]');
  await rStats.getByRole("button", { name: "Show logs" }).first().click();
  await rStats.locator("pre.logs").getByText(/mean age: \d/).waitFor();
  await shot(ap, "sql-and-r-runs");

  // Another analyst of r_stats sees the run, but nothing to read, cancel or delete.
  await dp.goto(`${base}/dcrs/${dcrID}`);
  const othersRun = dp.locator('[data-node="r_stats"] [data-job]').filter({ hasText: `by ${analyst.email}` });
  await othersRun.waitFor();
  assert((await othersRun.getByRole("button").count()) === 0, `another analyst's run offers: ${await othersRun.innerText()}`);

  // The analyst deletes the run's result and logs for good, once sure.
  const run = rStats.locator("[data-job]").first();
  const deleteButton = run.getByRole("button", { name: /^Delete the result of the run of / });
  let asked = "";
  ap.once("dialog", (d) => ((asked = d.message()), d.dismiss()));
  await deleteButton.click();
  assert(/for good\? No one can get them back/.test(asked), `the page asked: ${asked}`);
  assert(await run.getByRole("button", { name: `Download r_stats.zip` }).isVisible(), "a dismissed deletion deleted the result");
  ap.once("dialog", (d) => d.accept());
  await deleteButton.click();
  await run.getByText(/Result and logs deleted/).waitFor();
  assert((await run.getByRole("button").count()) === 0, `a deleted run still offers: ${await run.innerText()}`);
  await shot(ap, "result-deleted");

  assert(problems.length === 0, problems.join("\n"));
  log("editor ok");
} catch (err) {
  // What each user saw when it failed.
  for (const [who, page] of Object.entries(pages)) {
    await shot(page, `failed-${who}`, { fullPage: true }).catch(() => {});
    log(`${who} sees:\n${await page.locator("main").innerText().catch(() => "?")}`);
  }
  throw err;
} finally {
  await browser.close();
}
