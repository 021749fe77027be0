// Browser end-to-end check of the dashboard, driven by a Rust test over stdin/stdout
// (crates/analytics/tests/it/dashboard.rs). Debian's chromium through playwright-core: no
// browser is downloaded.
//
//   node dashboard.mjs URL SCREENSHOT_DIR
//
// It prints `READY` once the first figures are drawn, then answers each stdin line:
//   EXPECT {json}  wait (15 s at most) until the KPI tiles show these values, without a
//                  reload; prints `MATCHED`
//   HOURS {json}   pick {country} for the hourly chart and wait (15 s at most) until it
//                  shows exactly {hours} ({"YYYY-MM-DDTHH": [orders, paid_cents]}); prints
//                  `MATCHED`
//   FINISH         escaping probe, the other pages, screenshots; prints `DONE`, exits 0
// Any failed check prints `FAIL <why>` and exits 1.
import { createRequire } from 'node:module';
import { createInterface } from 'node:readline';
import { mkdirSync } from 'node:fs';

const require = createRequire(new URL('../web/package.json', import.meta.url));
const { chromium } = require('playwright-core');

const [url, shots] = process.argv.slice(2);
mkdirSync(shots, { recursive: true });
let browser = null;
const fail = async (why) => { console.log('FAIL ' + why); await browser?.close(); process.exit(1); };
const timeout = setTimeout(() => fail('no verdict within 5 minutes'), 300_000);

browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
    '--disable-component-update', '--no-first-run', '--disable-sync', '--disable-quic'],
});
const page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
const errors = [];
page.on('pageerror', (e) => errors.push(String(e)));
page.on('console', (m) => { if (m.type() === 'error') errors.push(m.text()); });
await page.goto(url);
// Set once: a reload would lose it.
await page.evaluate(() => { window.__loadedOnce = true; });

// The KPI tiles and the funnel's steps (as `funnel_0` .. `funnel_3`), as shown.
const tiles = () => page.evaluate(() => Object.fromEntries([
  ...[...document.querySelectorAll('[data-kpi]')].map((t) => [t.dataset.kpi, t.dataset.value]),
  ...[...document.querySelectorAll('#funnel [data-step]')].map((s) => ['funnel_' + s.dataset.step, s.dataset.value]),
]));
const same = (shown, want) => {
  if (typeof want === 'number') {
    const v = Number(shown);
    return Number.isFinite(v) && Math.abs(v - want) <= 1e-9 * Math.max(1, Math.abs(want));
  }
  return shown === String(want);
};

try {
  await page.waitForFunction(() => window.__dashboard && window.__dashboard.overviews > 0, null, { timeout: 30_000 });
} catch { await fail('no figures within 30 s; page errors: ' + errors.join(' | ')); }
// Every chart has drawn: a canvas each, with data; the funnel has its four steps.
if ((await page.$$('#funnel [data-step]')).length !== 4) await fail('the funnel has not drawn its four steps');
for (const id of ['series', 'hours', 'countries']) {
  const drawn = await page.$eval('#' + id, (d) => {
    const c = d.querySelector('canvas');
    return { canvas: !!c && c.width > 0 && c.height > 0, points: Number(d.dataset.points || 0) };
  });
  if (!drawn.canvas || drawn.points < 1) await fail(`chart #${id} not drawn: ${JSON.stringify(drawn)}`);
}
console.log('READY');

const lines = createInterface({ input: process.stdin });
for await (const line of lines) {
  if (line.startsWith('EXPECT ')) {
    const want = JSON.parse(line.slice(7));
    const before = await page.evaluate(() => window.__dashboard.overviews);
    const deadline = Date.now() + 15_000;
    let shown = await tiles();
    while (!Object.entries(want).every(([k, v]) => same(shown[k], v))) {
      if (Date.now() > deadline) await fail('tiles ' + JSON.stringify(shown) + ' never showed ' + JSON.stringify(want));
      await page.waitForTimeout(200);
      shown = await tiles();
    }
    const steps = [0, 1, 2, 3].map((i) => Number(shown['funnel_' + i]));
    if (steps.some((n, i) => i && n > steps[i - 1])) await fail('a funnel step increases: ' + steps.join(' > '));
    const still = await page.evaluate(() => window.__loadedOnce === true);
    if (!still) await fail('the page was reloaded');
    const after = await page.evaluate(() => window.__dashboard.overviews);
    console.log('MATCHED ' + JSON.stringify({ shown, pushes_before: before, pushes_after: after }));
  } else if (line.startsWith('HOURS ')) {
    const want = JSON.parse(line.slice(6));
    await page.selectOption('#country', want.country).catch((e) => fail('no country ' + want.country + ' to pick: ' + e));
    const shows = () => page.evaluate(() => {
      const o = window.__dashboard.last;
      return { country: o.country, caption: document.querySelector('#hours-of').textContent,
        hours: Object.fromEntries(o.hours.map((h) => [h.day, [h.orders, h.paid_cents]])),
        points: Number(document.querySelector('#hours').dataset.points) };
    });
    const deadline = Date.now() + 15_000;
    let shown = await shows();
    const canon = (h) => JSON.stringify(Object.entries(h).sort());
    while (shown.country !== want.country || canon(shown.hours) !== canon(want.hours)) {
      if (Date.now() > deadline) await fail('hourly chart ' + JSON.stringify(shown) + ' never showed ' + JSON.stringify(want));
      await page.waitForTimeout(200);
      shown = await shows();
    }
    if (!shown.caption.includes(want.country) || shown.points !== Object.keys(want.hours).length) await fail('hourly chart not drawn for ' + want.country + ': ' + JSON.stringify(shown));
    console.log('MATCHED ' + JSON.stringify(shown));
  } else if (line === 'FINISH') {
    await page.screenshot({ path: `${shots}/overview.png`, fullPage: true });
    // Escaping: a product named like markup is shown as text and never runs.
    const probe = await page.evaluate(() => ({
      ran: window.__xss === 1,
      injected: document.querySelectorAll('img[src="x"], #products img').length,
      shownAsText: [...document.querySelectorAll('#products td')].some((td) => td.textContent.includes('<img src=x')),
    }));
    if (probe.ran || probe.injected) await fail('markup from an event ran in the page: ' + JSON.stringify(probe));
    // Category interest: a row per category with an active product, scores descending.
    const scores = await page.$$eval('#categories tbody tr', (rs) => rs.map((r) => Number(r.cells[1].textContent.replace(/,/g, ''))));
    if (!scores.length || scores.some((s, i) => i && s > scores[i - 1])) await fail('category interest: ' + JSON.stringify(scores));
    if (!probe.shownAsText) await fail('the probe product is not listed as text: ' + JSON.stringify(probe));
    // Pipeline: every instance answered, healthy, with its figures.
    await page.click('nav button[data-tab="pipeline"]');
    await page.waitForFunction(() => window.__dashboard.pipelines > 1, null, { timeout: 15_000 }).catch(() => fail('no pipeline push'));
    const instances = await page.$$eval('#instances tbody tr', (rs) => rs.map((r) => [...r.cells].map((c) => c.textContent)));
    if (!instances.length || !instances.every((r) => r[1].startsWith('healthy'))) await fail('pipeline: ' + JSON.stringify(instances));
    const types = await page.$$eval('#event-types tbody tr', (rs) => rs.length);
    if (types < 1) await fail('pipeline: no event types');
    await page.screenshot({ path: `${shots}/pipeline.png`, fullPage: true });
    // Data browser: root → statistics → a document with fields.
    await page.click('nav button[data-tab="data"]');
    await page.click('#browser a[data-path="statistics"]', { timeout: 15_000 }).catch(() => fail('no statistics collection in the browser'));
    await page.click('#browser a[data-path="statistics/lifetime"]', { timeout: 15_000 }).catch(() => fail('no statistics/lifetime document'));
    await page.click('#browser a[data-path="statistics/lifetime/shards"]', { timeout: 15_000 }).catch(() => fail('no shards under statistics/lifetime'));
    await page.click('#browser li:first-child a', { timeout: 15_000 });
    await page.waitForSelector('#browser pre', { timeout: 15_000 }).catch(() => fail('a shard shows no fields'));
    const fields = await page.$eval('#browser pre', (p) => p.textContent);
    if (!fields.includes('started_sessions_count')) await fail('shard fields: ' + fields.slice(0, 200));
    await page.screenshot({ path: `${shots}/data.png`, fullPage: true });
    if (errors.length) await fail('page errors: ' + errors.join(' | '));
    console.log('DONE');
    clearTimeout(timeout);
    await browser.close();
    process.exit(0);
  }
}
await fail('stdin closed before FINISH');
