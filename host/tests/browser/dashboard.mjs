// Drives Debian's headless Chromium over the live dashboard, as a person watching it would:
//   node dashboard.mjs URL SCREENSHOT [after|shadow]
// With `after`, the data was processed before the page opens: the table and the chart must
// fill from the host's results view within 15 s, with nothing arriving live. With `shadow`,
// the pipeline has a shadow run: its panel must show the diff and the first differing windows
// within 15 s (host/tests/shadow.rs); the summary has the panel's text and rows.
// Loads URL, waits (at most 60 s) until the table of current windows has at least 20 rows and
// the chart at least 2 series with points, records what the page shows, waits a few seconds
// and checks that it changed (the page must fill while the replay runs), saves a screenshot,
// prints a JSON summary on stdout. Says "dashboard: page loaded" on stderr once the page is
// loaded, so that the caller can start the replay then. Exits 1 with a one-line reason on stderr on any failure.
// Run by host/tests/dashboard.rs; needs `npm ci` here and /usr/bin/chromium.

import { chromium } from "playwright-core";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

const CHROMIUM = process.env.CHROMIUM || "/usr/bin/chromium";
const FILL_TIMEOUT_MS = ["after", "shadow"].includes(process.argv[4]) ? 15_000 : 60_000;
const CHANGE_WINDOW_MS = 8_000;
const MIN_ROWS = 20;
const MIN_SERIES = 2;

const [url, screenshot, mode] = process.argv.slice(2);
const AFTER = mode === "after";
const SHADOW = mode === "shadow";

/** The shadow panel: hidden or not, its diff line and its rows. Runs in the page. */
function readShadow() {
  const section = document.getElementById("shadowsection");
  return {
    shown: !!section && !section.hidden,
    runs: document.getElementById("shadowruns")?.textContent ?? "",
    diff: document.getElementById("shadowdiff")?.textContent ?? "",
    rows: [...document.querySelectorAll("#shadowrows tbody tr")].map(tr =>
      [...tr.querySelectorAll("td")].map(td => td.textContent)),
  };
}

/** Ends the test with `message` (thrown, so the browser is closed on the way out). */
function fail(message) {
  throw new Failure(message);
}

class Failure extends Error {}

/** What the page shows now: stats, table rows, chart series. Runs in the page. */
function readPage() {
  const text = id => document.getElementById(id)?.textContent ?? "";
  const rows = [...document.querySelectorAll("#table tbody tr")].map(tr =>
    [...tr.querySelectorAll("td")].map(td => td.textContent));
  const series = [...document.querySelectorAll("#chart polyline.series")]
    .map(p => (p.getAttribute("points") || "").trim().split(/\s+/).filter(Boolean).length);
  return {
    status: text("status"),
    pipeline: document.getElementById("pipeline")?.value ?? "",
    stats: {
      records: text("records"), rate: text("rate"), watermark: text("watermark"),
      rows_out: text("rows_out"), dead: text("dead"), late: text("late"),
    },
    rows,
    series,
    early_rows: document.querySelectorAll("#table tbody tr.early").length,
    cluster: [...document.querySelectorAll("#cluster tbody tr")].map(tr =>
      [...tr.querySelectorAll("td")].map(td => td.textContent)),
  };
}

const filled = s => s.rows.length >= MIN_ROWS && s.series.filter(n => n > 0).length >= MIN_SERIES;

/** A hung browser must not hang the test: give up after this long in all. */
const OVERALL_TIMEOUT_MS = 150_000;

async function main() {
  setTimeout(() => {
    console.error(`dashboard browser test failed: no result after ${OVERALL_TIMEOUT_MS / 1000} s`);
    process.exit(1);
  }, OVERALL_TIMEOUT_MS).unref();
  if (!url || !screenshot) fail("usage: node dashboard.mjs URL SCREENSHOT");
  if (!existsSync(CHROMIUM)) {
    fail(`${CHROMIUM} is missing: install Debian's browser with \`apt-get install chromium\``);
  }
  const profile = mkdtempSync(join(tmpdir(), "sluice-chromium-"));
  const errors = [];
  const context = await chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: [
      "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
    ],
    viewport: { width: 1400, height: 900 },
  });
  try {
    const page = context.pages()[0] ?? (await context.newPage());
    page.on("pageerror", e => errors.push(`page error: ${e.message}`));
    page.on("console", m => { if (m.type() === "error") errors.push(`console: ${m.text()}`); });
    page.on("response", r => { if (r.status() >= 400) errors.push(`${r.status()} for ${r.url()}`); });
    const started = Date.now();
    const response = await page.goto(url, { waitUntil: "load", timeout: 20_000 });
    if (!response || !response.ok()) fail(`GET ${url} answered ${response?.status()}`);
    console.error("dashboard: page loaded"); // host/tests/dashboard.rs starts the replay now
    if (SHADOW) {
      let panel = await page.evaluate(readShadow);
      while (!(panel.shown && panel.rows.length > 0)) {
        if (Date.now() - started > FILL_TIMEOUT_MS) {
          fail(`after ${FILL_TIMEOUT_MS / 1000} s the shadow panel shows ${JSON.stringify(panel)}; ${errors.join("; ")}`);
        }
        await page.waitForTimeout(250);
        panel = await page.evaluate(readShadow);
      }
      await page.screenshot({ path: screenshot, fullPage: true });
      if (errors.length) fail(errors.join("; "));
      console.log(JSON.stringify({ url, screenshot, shown_after_ms: Date.now() - started, shadow: panel }, null, 2));
      return;
    }
    let first = await page.evaluate(readPage);
    while (!filled(first)) {
      if (Date.now() - started > FILL_TIMEOUT_MS) {
        fail(`after ${FILL_TIMEOUT_MS / 1000} s the page shows ${first.rows.length} table rows ` +
          `(want ≥ ${MIN_ROWS}) and series with ${JSON.stringify(first.series)} points ` +
          `(want ≥ ${MIN_SERIES} non-empty); status "${first.status}"; ${errors.join("; ")}`);
      }
      await page.waitForTimeout(250);
      first = await page.evaluate(readPage);
    }
    const filledAfterMs = Date.now() - started;
    if (AFTER) {
      await page.screenshot({ path: screenshot, fullPage: true });
      if (errors.length) fail(errors.join("; "));
      console.log(JSON.stringify({ url, screenshot, filled_after_ms: filledAfterMs, page: summary(first) }, null, 2));
      return;
    }
    await page.waitForTimeout(CHANGE_WINDOW_MS);
    const second = await page.evaluate(readPage);
    // The table or the record count, not the rate (which moves even when nothing flows).
    const changed = JSON.stringify(first.rows) !== JSON.stringify(second.rows)
      || first.stats.records !== second.stats.records;
    await page.screenshot({ path: screenshot, fullPage: true });
    if (!changed) {
      fail(`nothing on the page changed in ${CHANGE_WINDOW_MS / 1000} s after it filled ` +
        `(records ${first.stats.records}): it does not follow the live stream`);
    }
    if (errors.length) fail(errors.join("; "));
    // The cluster view: this host, running the pipeline, with its tasks, their partitions and
    // the records each took in.
    const mine = second.cluster.find(r => r[0].includes("(this host)") && r[2] === second.pipeline);
    if (!mine || !/\d+: \d[^(]*\([\d,]+ records in\)/.test(mine[4])) {
      fail(`the cluster table shows no task of this host's pipeline: ${JSON.stringify(second.cluster)}`);
    }
    console.log(JSON.stringify({
      url, screenshot, filled_after_ms: filledAfterMs,
      first: summary(first), later: summary(second),
    }, null, 2));
  } finally {
    await context.close();
    rmSync(profile, { recursive: true, force: true });
  }
}

/** The stats, the counts and the first three table rows. */
function summary(s) {
  return {
    status: s.status, pipeline: s.pipeline, stats: s.stats, table_rows: s.rows.length,
    early_rows: s.early_rows, series_points: s.series, top_rows: s.rows.slice(0, 3),
    cluster: s.cluster,
  };
}

main().catch(e => {
  const message = e instanceof Failure ? e.message : e?.stack || String(e);
  console.error(`dashboard browser test failed: ${message}`);
  process.exitCode = 1;
});
