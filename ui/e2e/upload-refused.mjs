// An upload the server refuses: the data owner picks a file over the
// server's upload limit; the page must show the server's own words next to
// the data node and publish nothing. The Go test that starts this
// (cmd/cleanroom/ui_test.go) checks the server kept nothing.
//
// With BLOCKED=1 the page knows before any upload that it must refuse
// (an enclave it cannot trust): the upload button is disabled and the
// reason shown next to it.
//
// env: CLEANROOM_URL, EMAIL, TOKEN, DCR, NODE, FILE, WANT (text the error must contain), BLOCKED

import { assert, env, launch, log, signIn, watchPage } from "./lib.mjs";

const base = env("CLEANROOM_URL");
const problems = [];
const browser = await launch();
try {
  const page = await (await browser.newContext()).newPage();
  watchPage(page, "data owner", problems);
  await signIn(page, base, env("EMAIL"), env("TOKEN"));
  await page.goto(`${base}/dcrs/${env("DCR")}`);
  const card = page.locator(`[data-node="${env("NODE")}"]`);
  await card.locator('input[type="file"]').setInputFiles(env("FILE"));
  const button = card.getByRole("button", { name: "Encrypt and upload" });
  const blocked = process.env.BLOCKED === "1";
  if (!blocked) await button.click();
  const error = card.locator(".error");
  await error.waitFor({ timeout: 30000 });
  const text = await error.innerText();
  log(`the page says: ${text}`);
  assert(text.includes(env("WANT")), `error next to the node is "${text}", want the server's "${env("WANT")}"`);
  assert(!/published by/.test(await card.getByTestId("dataset-status").innerText()), "a dataset shows as published");
  if (blocked) {
    assert(await button.isDisabled(), "the upload button is enabled for an enclave the page cannot trust");
  } else {
    assert(await button.isEnabled(), "the upload button stays disabled after the error");
  }
  assert(problems.length === 0, problems.join("\n"));
} finally {
  await browser.close();
}
