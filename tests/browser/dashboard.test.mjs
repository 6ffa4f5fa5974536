// Loads the relaystats dashboard in headless Debian Chromium (driven by
// playwright-core, no browser download) against a running relaystats with
// seeded data, and checks that it shows the seeded totals, that the live
// counter follows the realtime endpoint, and that the range selector works.
//
// Environment: RS_URL (http://127.0.0.1:PORT), RS_TOKEN (admin token),
// RS_EXPECT (JSON: {"total24h", "total7d", "chains": {"0021": n, ...},
// "reasons": {"invalid_host": n, ...}}), RS_SCREENSHOT (PNG path),
// RS_BUMP (a command that adds relays to the current bucket in Redis).
import { chromium } from "playwright-core";
import { execSync } from "node:child_process";
import assert from "node:assert/strict";

const base = process.env.RS_URL;
const token = process.env.RS_TOKEN;
const expect = JSON.parse(process.env.RS_EXPECT);
const shot = process.env.RS_SCREENSHOT;
let passed = 0, failed = 0;

async function check(name, fn) {
  try {
    await fn();
    passed++;
    console.log(`ok: ${name}`);
  } catch (e) {
    failed++;
    console.log(`FAIL: ${name}: ${e.message}`);
  }
}

async function realtimeTotal() {
  const r = await fetch(`${base}/api/v1/realtime`, { headers: { Authorization: `Bearer ${token}` } });
  return (await r.json()).total;
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1280, height: 1000 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(e.message));
  page.on("console", (m) => { if (m.type() === "error") errors.push(m.text()); });
  await page.goto(`${base}/#token=${encodeURIComponent(token)}`);

  await check("total of the last 24 hours", async () => {
    await page.waitForFunction(() => document.getElementById("total").dataset.total !== "", null,
                               { timeout: 10000 });
    assert.equal(Number(await page.getAttribute("#total", "data-total")), expect.total24h);
  });
  await check("per-chain legend totals", async () => {
    for (const [chain, n] of Object.entries(expect.chains)) {
      const v = await page.getAttribute(`#legend-chains li[data-chain="${chain}"]`, "data-total");
      assert.equal(Number(v), n, `chain ${chain}`);
    }
  });
  await check("one line per chain in the SVG chart", async () => {
    assert.equal(await page.locator("#chart-chains path.series").count(),
                 Object.keys(expect.chains).length);
  });
  await check("gateway bars", async () => {
    assert.ok(await page.locator("#chart-gateways .row[data-gateway]").count() >= 1);
  });
  await check("non-relays by reason", async () => {
    await page.waitForSelector("#chart-nonrelays .row[data-reason]", { timeout: 5000 });
    for (const [reason, n] of Object.entries(expect.reasons)) {
      const v = await page.getAttribute(`#chart-nonrelays .row[data-reason="${reason}"]`, "data-total");
      assert.equal(Number(v), n, `reason ${reason}`);
    }
  });
  await check("live counter shows the realtime endpoint and updates", async () => {
    await page.waitForFunction(() => document.getElementById("live-hour").textContent !== "–", null,
                               { timeout: 5000 });
    assert.equal(await page.textContent("#live-redis"), "live");
    const before = await realtimeTotal();
    execSync(process.env.RS_BUMP);
    const after = await realtimeTotal();
    assert.ok(after > before, `realtime total did not grow (${before} -> ${after})`);
    await page.waitForFunction((want) =>
      document.getElementById("live-hour").textContent.replace(/,/g, "") === String(want),
      after, { timeout: 6000 });
  });
  await page.screenshot({ path: shot, fullPage: true });
  await check("range selector: last 7 days", async () => {
    await page.selectOption("#range", "7d");
    await page.waitForFunction((want) =>
      document.getElementById("total").dataset.total === String(want), expect.total7d,
      { timeout: 10000 });
    assert.equal(await page.inputValue("#step"), "1h");
  });
  await check("step selector: 1 day", async () => {
    await page.selectOption("#step", "1d");
    await page.waitForFunction(() => /step 1d/.test(document.getElementById("range-label").textContent),
                               null, { timeout: 10000 });
    assert.equal(Number(await page.getAttribute("#total", "data-total")), expect.total7d);
  });
  await check("no script errors", async () => { assert.deepEqual(errors, []); });
} finally {
  await browser.close();
}
console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
