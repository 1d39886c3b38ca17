// Accessibility of the main pages: the sign-in page, the clean rooms
// list, the draft editor (a raw node and a Python computation; the Data,
// Computations and Participants tabs) and a published clean room's
// overview as its data owner and as its analyst. On each page:
//
//   - labelled controls: every visible input, select, textarea, button,
//     link and element with role button, checkbox or tab has a non-empty
//     accessible name;
//   - readable at 1280x800 and at 390x844: no horizontal scrolling of the
//     page, no text clipped by an overflow or pushed off the screen, no
//     text smaller than 12 px; a full-page screenshot at both sizes.
//
// On the clean rooms list and on each tab of the editor, Tab goes through
// the page: every visible enabled control gets the focus at least once
// (CodeMirror's editor through its .cm-content) and shows a focus
// indicator when it has it.
//
// env: CLEANROOM_URL, OWNER/DATA/ANALYST_EMAIL and _TOKEN, SCREENSHOTS (a
// directory).

import { assert, env, launch, log, screenshotter, signIn, watchPage } from "./lib.mjs";

const base = env("CLEANROOM_URL");
const shot = screenshotter(env("SCREENSHOTS"));
const owner = { email: env("OWNER_EMAIL"), token: env("OWNER_TOKEN") };
const dataOwner = { email: env("DATA_EMAIL"), token: env("DATA_TOKEN") };
const analyst = { email: env("ANALYST_EMAIL"), token: env("ANALYST_TOKEN") };
const desktop = { width: 1280, height: 800 };
const phone = { width: 390, height: 844 };
const problems = [];
const checked = [];

const INTERACTIVE = 'input:not([type="hidden"]), select, textarea, button, a[href], [role="button"], [role="checkbox"], [role="tab"], .cm-content';

/** unlabelled lists the visible controls of the page without an accessible name. */
function unlabelled(page) {
  return page.evaluate((sel) => {
    const visible = (el) => el.checkVisibility({ checkVisibilityCSS: true }) && el.getClientRects().length > 0;
    const text = (el) => (el.textContent || "").replace(/\s+/g, " ").trim();
    const describe = (el) => el.outerHTML.replace(/\s+/g, " ").slice(0, 160);
    const name = (el) => {
      const by = el.getAttribute("aria-labelledby");
      if (by) {
        const t = by.split(/\s+/).map((id) => text(document.getElementById(id) || document.createElement("x"))).join(" ").trim();
        if (t) return t;
      }
      const aria = (el.getAttribute("aria-label") || "").trim();
      if (aria) return aria;
      if (el.labels && el.labels.length) {
        const t = [...el.labels].map(text).join(" ").trim();
        if (t) return t;
      }
      const tag = el.tagName;
      const isField = (tag === "INPUT" && !["button", "submit", "reset"].includes(el.type)) || tag === "SELECT" || tag === "TEXTAREA";
      if (!isField || el.getAttribute("role")) {
        const t = text(el) || [...el.querySelectorAll("img[alt]")].map((i) => i.alt).join(" ").trim();
        if (t) return t;
      }
      if (tag === "INPUT" && ["submit", "reset", "button"].includes(el.type) && el.value) return el.value;
      return (el.getAttribute("title") || "").trim();
    };
    return [...document.querySelectorAll(sel)].filter((el) => visible(el) && !name(el)).map(describe);
  }, INTERACTIVE);
}

/** readability lists what makes the page hard to read at its viewport. */
function readability(page) {
  return page.evaluate(() => {
    const out = [];
    const w = window.innerWidth;
    const de = document.documentElement;
    if (de.scrollWidth > w + 1) out.push(`the page scrolls horizontally: ${de.scrollWidth}px wide in a ${w}px viewport`);
    const where = (el) => {
      const id = el.id ? `#${el.id}` : "";
      const cls = typeof el.className === "string" && el.className ? "." + el.className.trim().split(/\s+/).join(".") : "";
      return `<${el.tagName.toLowerCase()}${id}${cls}> “${(el.textContent || el.value || "").replace(/\s+/g, " ").trim().slice(0, 50)}”`;
    };
    const hiddenAway = (el) => el.closest(".visually-hidden, .offscreen, [aria-hidden='true']");
    const scrollable = (el) => {
      for (let a = el.parentElement; a; a = a.parentElement) {
        const o = getComputedStyle(a).overflowX;
        if (o === "auto" || o === "scroll") return true;
      }
      return false;
    };
    const seen = new Set();
    const walker = document.createTreeWalker(document.body, NodeFilter.SHOW_TEXT);
    for (let n = walker.nextNode(); n; n = walker.nextNode()) {
      if (!n.textContent.trim()) continue;
      const el = n.parentElement;
      if (!el || seen.has(el) || hiddenAway(el) || !el.checkVisibility({ checkVisibilityCSS: true })) continue;
      seen.add(el);
      const cs = getComputedStyle(el);
      const size = parseFloat(cs.fontSize);
      if (size < 12) out.push(`text at ${size}px: ${where(el)}`);
      const range = document.createRange();
      range.selectNodeContents(n);
      const r = range.getBoundingClientRect();
      if (r.width === 0) continue;
      if ((r.right > w + 1 || r.left < -1) && !scrollable(el)) out.push(`text off the screen (${Math.round(r.left)}..${Math.round(r.right)}px): ${where(el)}`);
      // Clipped by an ancestor that hides its overflow.
      for (let a = el; a && a !== document.body; a = a.parentElement) {
        const o = getComputedStyle(a);
        if (o.overflowX === "auto" || o.overflowX === "scroll") break;
        if ((o.overflowX === "hidden" || o.overflowX === "clip" || o.textOverflow === "ellipsis") && a.scrollWidth > a.clientWidth + 1) {
          out.push(`text clipped by ${where(a)}: ${a.scrollWidth}px of content in ${a.clientWidth}px`);
          break;
        }
      }
    }
    // Form fields too narrow for the screen.
    for (const el of document.querySelectorAll("input, select, textarea, button")) {
      if (!el.checkVisibility({ checkVisibilityCSS: true }) || hiddenAway(el)) continue;
      const r = el.getBoundingClientRect();
      if (r.width && (r.right > w + 1 || r.left < -1) && !scrollable(el)) out.push(`control off the screen (${Math.round(r.left)}..${Math.round(r.right)}px): ${where(el)}`);
    }
    return [...new Set(out)];
  });
}

/** check checks a page's labels and readability at both sizes and saves
 * a screenshot at each. */
async function check(page, name) {
  const t0 = Date.now();
  for (const [size, vp] of [["desktop", desktop], ["phone", phone]]) {
    await page.setViewportSize(vp);
    await page.evaluate(() => new Promise((r) => requestAnimationFrame(() => requestAnimationFrame(r))));
    for (const p of await unlabelled(page)) problems.push(`${name} (${size}): control without a name: ${p}`);
    for (const p of await readability(page)) problems.push(`${name} (${size}): ${p}`);
    await shot(page, `${name}-${size}`, { fullPage: true });
  }
  await page.setViewportSize(desktop);
  checked.push(name);
  log(`${name}: checked (${Date.now() - t0} ms)`);
}

/** tabThrough presses Tab through the page and reports the visible
 * enabled controls that never got the focus, and the focused controls
 * without a visible focus indicator. */
async function tabThrough(page, name) {
  const t0 = Date.now();
  const total = await page.evaluate((sel) => {
    document.activeElement?.blur?.();
    window.scrollTo(0, 0);
    let n = 0;
    for (const el of document.querySelectorAll(sel)) {
      delete el.dataset.a11yId;
      if (el.matches(":disabled") || !el.checkVisibility({ checkVisibilityCSS: true }) || el.closest("[inert]")) continue;
      if (el.closest(".cm-editor") && !el.matches(".cm-content")) continue;
      el.dataset.a11yId = String(n++);
    }
    return n;
  }, INTERACTIVE);
  const reached = new Set();
  const noIndicator = new Set();
  let wrapped = false;
  for (let i = 0; i < total + 15 && !wrapped; i++) {
    await page.keyboard.press("Tab");
    const got = await page.evaluate(() => {
      const el = document.activeElement;
      if (!el || el === document.body) return null;
      // The editor's focus ring is drawn around it, not on its content.
      const ring = el.matches(".cm-content") ? el.closest(".code-editor") || el.closest(".cm-editor") : el;
      const cs = getComputedStyle(ring);
      const shown = (cs.outlineStyle !== "none" && parseFloat(cs.outlineWidth) > 0) || (cs.boxShadow && cs.boxShadow !== "none");
      return { id: el.dataset.a11yId ?? null, shown, what: el.outerHTML.replace(/\s+/g, " ").slice(0, 120) };
    });
    if (!got) continue;
    if (got.id !== null && reached.has(got.id) && reached.size === total) wrapped = true;
    if (got.id !== null) reached.add(got.id);
    if (!got.shown) noIndicator.add(got.what);
  }
  const missed = await page.evaluate((ids) => [...document.querySelectorAll("[data-a11y-id]")].filter((el) => !ids.includes(el.dataset.a11yId)).map((el) => el.outerHTML.replace(/\s+/g, " ").slice(0, 120)), [...reached]);
  for (const m of missed) problems.push(`${name}: not reachable with Tab: ${m}`);
  for (const m of noIndicator) problems.push(`${name}: no visible focus indicator: ${m}`);
  log(`${name}: Tab reached ${reached.size} of ${total} controls (${Date.now() - t0} ms)`);
  assert(total > 0, `${name}: no controls found`);
}

const browser = await launch();
const pages = {};
try {
  // ---- the owner: sign-in, list, editor ----
  const op = (pages.owner = await (await browser.newContext({ viewport: desktop })).newPage());
  watchPage(op, "owner", problems);
  await op.goto(base + "/");
  await op.getByRole("heading", { name: "Sign in" }).waitFor();
  await check(op, "sign-in");
  await signIn(op, base, owner.email, owner.token);

  // A draft to list beside the published clean room.
  await op.evaluate(async (me) => {
    const s = await (await fetch("/api/v1/session")).json();
    await fetch("/api/v1/drafts", { method: "POST", headers: { "Content-Type": "application/json", "X-Cleanroom-CSRF": s.csrf_token }, body: JSON.stringify({ name: "A draft with a rather long name that wraps on a phone", owner: me, nodes: [], participants: [{ email: me }] }) });
  }, owner.email);

  await op.getByLabel("New clean room name").fill("Accessible Uppercase");
  await op.getByRole("button", { name: "Create clean room" }).click();
  await op.getByLabel("Clean room name").waitFor();
  await op.getByRole("form", { name: "Add data node" }).getByLabel("Name").fill("input_data_node");
  await op.getByRole("button", { name: "Add data node" }).click();
  await op.locator('[data-node="input_data_node"]').waitFor();
  await check(op, "editor-data");
  await tabThrough(op, "editor-data");

  await op.getByRole("tab", { name: "Computations" }).click();
  await op.getByLabel("Computation name").fill("uppercase_text_node");
  await op.getByRole("button", { name: "Add computation" }).click();
  const files = op.getByRole("complementary", { name: "File browser" });
  await files.getByLabel(/input_data_node/).check();
  await op.locator('.cm-content[aria-label="uppercase_text_node main script"]').click();
  await op.keyboard.insertText('with open("/input/input_data_node") as f:\n    text = f.read()\nwith open("/output/uppercase.txt", "w") as f:\n    f.write(text.upper())\n');
  await check(op, "editor-computations");
  await tabThrough(op, "editor-computations");

  await op.getByRole("tab", { name: "Participants" }).click();
  for (const email of [dataOwner.email, analyst.email]) {
    await op.getByLabel("Participant email").fill(email);
    await op.getByRole("button", { name: "Add participant" }).click();
  }
  await op.locator(`[data-participant="${dataOwner.email}"]`).getByLabel("input_data_node").check();
  await op.locator(`[data-participant="${analyst.email}"]`).getByLabel("uppercase_text_node").check();
  await op.getByText("All changes saved").waitFor();
  await check(op, "editor-participants");
  await tabThrough(op, "editor-participants");

  await op.getByRole("button", { name: "Encrypt and publish" }).click();
  const dcrID = (await op.getByTestId("published-id").innerText()).trim();

  await op.getByRole("link", { name: "cleanroom" }).click();
  await op.getByRole("link", { name: "Accessible Uppercase" }).waitFor();
  await check(op, "rooms");
  await tabThrough(op, "rooms");

  // The checks find what they look for: an unnamed button, a control Tab
  // cannot reach, small text and a page wider than the phone.
  const planted = await op.evaluate(() => {
    const box = document.createElement("div");
    box.id = "planted";
    box.innerHTML = '<button type="button"></button><span role="button">not focusable</span><p>small</p><div>wide</div>';
    // Styles set through the CSSOM: the page's CSP drops style attributes.
    box.children[2].style.fontSize = "10px";
    box.children[3].style.width = "600px";
    document.querySelector("main").append(box);
    return box.children.length;
  });
  const caught = { names: await unlabelled(op), unread: (await op.setViewportSize(phone), await readability(op)) };
  await op.setViewportSize(desktop);
  const before = problems.length;
  await tabThrough(op, "planted");
  caught.tab = problems.splice(before);
  await op.evaluate(() => document.getElementById("planted").remove());
  assert(planted === 4 && caught.names.length === 1 && caught.tab.some((p) => p.includes("not focusable")), `the planted problems were not all found: ${JSON.stringify(caught)}`);
  assert(caught.unread.some((p) => p.startsWith("text at 10px")) && caught.unread.some((p) => p.startsWith("the page scrolls horizontally")), `the planted problems were not all found: ${JSON.stringify(caught)}`);

  // ---- the published clean room, as its data owner and its analyst ----
  for (const [who, u] of [["data-owner", dataOwner], ["analyst", analyst]]) {
    const p = (pages[who] = await (await browser.newContext({ viewport: desktop })).newPage());
    watchPage(p, who, problems);
    await signIn(p, base, u.email, u.token);
    await p.goto(`${base}/dcrs/${dcrID}`);
    await p.getByTestId("dcr-id").waitFor();
    await p.locator('[data-node="uppercase_text_node"] .cm-content').waitFor();
    await check(p, `overview-${who}`);
  }

  log(`checked: ${checked.join(", ")}`);
  assert(problems.length === 0, `${problems.length} problems:\n` + problems.join("\n"));
  log("a11y ok");
} catch (err) {
  for (const [who, page] of Object.entries(pages)) await shot(page, `failed-${who}`, { fullPage: true }).catch(() => {});
  throw err;
} finally {
  await browser.close();
}
