// The dashboard's freshness, seen in a real browser (driven by scripts/bench-dashboard.sh):
// PAGES pages open on the overview; on the first one, the trending table is watched
// for probe products (named `probe <production time in ms>`, produced by the benchmark twice
// a second); a probe's freshness is when it first shows minus when it was produced.
//   node freshness.mjs URL PAGES SECONDS   -> one JSON line: {samples, p50, p99, max, pushes}
import { createRequire } from 'node:module';

const require = createRequire(new URL('../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [url, pages, seconds] = [process.argv[2], Number(process.argv[3]), Number(process.argv[4])];
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
});
const open = [];
for (let i = 0; i < pages; i++) {
  const page = await (await browser.newContext()).newPage();
  await page.goto(url);
  open.push(page);
}
const watch = open[0];
await watch.waitForFunction(() => window.__dashboard && window.__dashboard.overviews > 0, null, { timeout: 60_000 });
// Only probes produced once every page is open and showing figures count: the earlier ones
// appear all at once when a page first loads. The page itself notes when each probe first
// shows (a MutationObserver on the trending table), so measuring costs the browser nothing
// between pushes.
const start = Date.now();
await watch.evaluate((since) => {
  const seen = (window.__probes = {});
  const scan = () => {
    const now = Date.now();
    for (const td of document.querySelectorAll('#products td:first-child')) {
      const m = /^probe (\d+)$/.exec(td.textContent);
      if (m && Number(m[1]) >= since && !(m[1] in seen)) seen[m[1]] = now;
    }
  };
  new MutationObserver(scan).observe(document.querySelector('#products tbody'), { childList: true, subtree: true, characterData: true });
}, start);
await watch.waitForTimeout(seconds * 1000);
const shown = await watch.evaluate(() => window.__probes);
const seen = new Map(Object.entries(shown).map(([ms, at]) => [ms, (at - Number(ms)) / 1000]));
const pushes = await watch.evaluate(() => window.__dashboard.overviews);
const all = [...seen.values()].sort((a, b) => a - b);
const q = (p) => (all.length ? all[Math.min(all.length - 1, Math.floor(p * all.length))] : null);
console.log(JSON.stringify({ samples: all.length, p50: q(0.5), p99: q(0.99), max: all.at(-1) ?? null, pushes }));
await browser.close();
