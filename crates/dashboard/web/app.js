// The dashboard's page: renders what /api/stream pushes. Every text coming from the data
// (product, country and payment names, document fields) goes through textContent, never
// through HTML parsing.
'use strict';

const $ = (sel) => document.querySelector(sel);
const el = (tag, text, cls) => {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (cls) e.className = cls;
  return e;
};
const state = { bucket: 'lifetime', country: '', source: null, overviews: 0, pipelines: 0, last: null, previousScrape: null };
window.__dashboard = state;

let currency = 'USD';
const money = (cents) => (cents / 100).toLocaleString('en-US', { minimumFractionDigits: 2, maximumFractionDigits: 2 }) + ' ' + currency;
const pct = (x) => (x * 100).toFixed(1) + '%';
const int = (x) => Number(x).toLocaleString('en-US');
const ratio = (a, b) => (b ? a / b : 0);
const secs = (x) => (x >= 120 ? (x / 60).toFixed(1) + ' min' : x.toFixed(0) + ' s');

// ---- tabs ----
for (const b of document.querySelectorAll('nav button')) {
  b.addEventListener('click', () => {
    for (const o of document.querySelectorAll('nav button')) o.classList.toggle('active', o === b);
    for (const s of document.querySelectorAll('.tab')) s.hidden = s.id !== b.dataset.tab;
    if (b.dataset.tab === 'data' && !$('#browser').childElementCount) browse('');
  });
}

// ---- overview ----
const KPIS = [
  ['active_sessions', 'Active sessions', (o) => o.lifetime.active_sessions ?? 0, int, () => null],
  ['sessions', 'Sessions', (o) => o.current.sessions_started, int, (p) => p.sessions_started],
  ['orders', 'Orders', (o) => o.current.orders, int, (p) => p.orders],
  ['conversion', 'Conversion', (o) => o.current.conversion_rate, pct, (p) => p.conversion_rate],
  ['gross', 'Revenue gross', (o) => o.current.gross_cents, money, (p) => p.gross_cents],
  ['net', 'Revenue net', (o) => o.current.net_revenue_cents, money, (p) => p.net_revenue_cents],
  ['paid', 'Revenue paid', (o) => o.current.paid_cents, money, (p) => p.paid_cents],
  ['aov', 'Average order', (o) => o.current.average_order_value_cents, (c) => money(Math.round(c)), (p) => p.average_order_value_cents],
  ['abandonment', 'Cart abandonment', (o) => ratio(o.current.funnel.abandoned_carts, o.current.funnel.sessions_added_to_cart), pct, (p) => ratio(p.funnel.abandoned_carts, p.funnel.sessions_added_to_cart)],
  ['first_purchase', 'Time to first purchase', (o) => ratio(o.current.funnel.first_purchase_seconds_total, o.current.funnel.first_purchases_timed), secs, (p) => ratio(p.funnel.first_purchase_seconds_total, p.funnel.first_purchases_timed)],
  ['payment', 'Top payment method', (o) => (o.current.payment_methods.find((m) => m.uses > 0) || { name: '–' }).name, (x) => x, () => null],
];

function tiles(o) {
  const box = $('#tiles');
  for (const [key, label, get, fmt, prev] of KPIS) {
    let t = box.querySelector(`[data-kpi="${key}"]`);
    if (!t) {
      t = el('div', undefined, 'tile');
      t.dataset.kpi = key;
      t.append(el('div', label, 'label'), el('div', '', 'value'), el('div', '', 'change'));
      box.append(t);
    }
    const v = get(o);
    t.dataset.value = String(v);
    t.querySelector('.value').textContent = fmt(v);
    const change = t.querySelector('.change');
    const before = o.previous ? prev(o.previous) : null;
    if (before === null || before === undefined || typeof v !== 'number') {
      change.textContent = o.previous ? '' : (key === 'active_sessions' ? 'now' : 'lifetime');
      change.className = 'change';
    } else {
      const d = v - before;
      change.textContent = (d >= 0 ? '▲ ' : '▼ ') + fmt(Math.abs(d)) + ' vs ' + o.previous.bucket;
      change.className = 'change ' + (d > 0 ? 'up' : d < 0 ? 'down' : '');
    }
  }
}

function size(div) {
  return { width: Math.max(300, div.clientWidth - 10), height: 240 };
}

// A chart is redrawn only when its data changed (the day series moves every few seconds,
// not at every push).
const drawn = {};
const changed = (id, data) => {
  const key = JSON.stringify(data);
  if (drawn[id] === key) return false;
  drawn[id] = key;
  return true;
};

// Orders and paid revenue over time: `points` are days (YYYY-MM-DD) or hours (YYYY-MM-DDTHH).
const timeCharts = {};
function series(id, points, step) {
  const div = $('#' + id);
  const x = points.map((d) => Date.parse(d.day.length > 10 ? d.day + ':00:00Z' : d.day + 'T00:00:00Z') / 1000);
  const data = [x, points.map((d) => d.orders), points.map((d) => d.paid_cents / 100)];
  if (!timeCharts[id]) {
    timeCharts[id] = new uPlot({
      ...size(div),
      // One point alone gets a step either side, so it is not at an edge.
      scales: { x: { time: true, range: (u, min, max) => (min === max ? [min - step, max + step] : [min, max]) }, money: {} },
      series: [{}, { label: 'orders', stroke: '#3366cc', width: 2, points: { show: true } },
        { label: 'paid ' + currency, stroke: '#cc6633', width: 2, scale: 'money', points: { show: true } }],
      axes: [{}, { label: 'orders' }, { side: 1, scale: 'money', label: currency, grid: { show: false } }],
    }, data, div);
  } else if (changed(id, data)) {
    timeCharts[id].setData(data);
  }
  div.dataset.points = String(x.length);
}

let countryChart = null;
let countryNames = [];
function countries(o) {
  const div = $('#countries');
  const list = o.current.countries;
  countryNames = list.map((c) => c.country);
  const data = [list.map((_, i) => i), list.map((c) => c.paid_cents / 100), list.map((c) => c.orders)];
  if (!countryChart) {
    countryChart = new uPlot({
      ...size(div),
      scales: { x: { time: false, range: (u, min, max) => [min - 0.5, max + 0.5] }, orders: {} },
      series: [{ label: 'country', value: (u, i) => countryNames[i] ?? '' },
        { label: 'paid ' + currency, fill: '#3366cc99', stroke: '#3366cc', paths: uPlot.paths.bars({ size: [0.6, 60] }), points: { show: false } },
        { label: 'orders', stroke: '#cc6633', scale: 'orders', points: { show: true }, paths: () => null }],
      axes: [{ values: (u, vals) => vals.map((i) => (Number.isInteger(i) ? countryNames[i] ?? '' : '')) }, { label: currency }, { side: 1, scale: 'orders', label: 'orders', grid: { show: false } }],
    }, data, div);
  } else if (changed('countries', [countryNames, data])) {
    countryChart.setData(data);
  }
  div.dataset.points = String(list.length);
}

// The session funnel as a step-down chart: each step's sessions, its share of the sessions,
// and the drop-off from the step before.
function funnel(o) {
  const c = o.current;
  const f = c.funnel;
  const steps = [['sessions', c.sessions_started], ['viewed a product', f.sessions_viewed_product],
    ['added to cart', f.sessions_added_to_cart], ['purchased', f.sessions_purchased]];
  const top = Math.max(1, ...steps.map((s) => s[1]));
  $('#funnel').replaceChildren(...steps.map(([label, n], i) => {
    const row = el('div', undefined, 'step');
    row.dataset.step = String(i);
    row.dataset.value = String(n);
    const bar = el('div', undefined, 'bar');
    bar.style.width = (100 * n / top).toFixed(1) + '%';
    const before = i ? steps[i - 1][1] : 0;
    const drop = i && before ? ' · −' + pct(1 - n / before) + ' from the step before' : '';
    row.append(el('div', label, 'label'), bar, el('div', int(n) + (i ? ' (' + pct(ratio(n, steps[0][1])) + ' of sessions)' : '') + drop, 'count'));
    return row;
  }));
  $('#funnel-note').textContent = int(f.abandoned_carts) + ' carts abandoned (ended with items, no purchase): '
    + pct(ratio(f.abandoned_carts, f.sessions_added_to_cart)) + ' of the sessions that added to the cart.';
}

// A table's rows, reusing the rows and cells already there: a push rewrites only the texts
// that changed, so many open pages stay cheap for the browser.
function rows(tbody, lines) {
  while (tbody.rows.length > lines.length) tbody.lastElementChild.remove();
  lines.forEach((cells, r) => {
    let tr = tbody.rows[r];
    if (!tr || tr.cells.length !== cells.length) {
      const fresh = el('tr');
      for (const [i, c] of cells.entries()) fresh.append(el('td', c, i ? 'num' : ''));
      if (tr) tr.replaceWith(fresh); else tbody.append(fresh);
      return;
    }
    for (const [i, c] of cells.entries()) {
      const text = String(c);
      if (tr.cells[i].textContent !== text) tr.cells[i].textContent = text;
    }
  });
}

function tables(o) {
  rows($('#products tbody'), o.current.top_products.map((p) => [p.name, int(p.units), int(p.orders), int(p.views), p.views ? pct(p.orders / p.views) : '–', money(p.revenue_cents), int(p.interest_score)]));
  rows($('#categories tbody'), o.current.categories.map((c) => [c.name, int(c.interest_score)]));
  const w = o.current.weights;
  $('#weights').textContent = `(score = ${w.view} × views + ${w.add_to_cart} × adds ${w.remove_from_cart < 0 ? '−' : '+'} ${Math.abs(w.remove_from_cart)} × removes + ${w.purchase} × units)`;
  const uses = o.current.payment_methods.reduce((s, m) => s + m.uses, 0);
  rows($('#payments tbody'), o.current.payment_methods.map((m) => [m.name, int(m.uses), uses ? pct(m.uses / uses) : '–']));
}

function buckets(o) {
  const sel = $('#bucket');
  const want = ['lifetime', ...o.days.map((d) => d.day).reverse()];
  const have = [...sel.options].map((x) => x.value);
  if (want.join() !== have.join()) {
    sel.replaceChildren(...want.map((d) => { const opt = el('option', d); opt.value = d; return opt; }));
    sel.value = state.bucket;
  }
}

// The countries the hourly chart can show: those with orders in the bucket shown.
function countryPicker(o) {
  const sel = $('#country');
  const want = ['', ...o.current.countries.map((c) => c.country).sort()];
  if (state.country && !want.includes(state.country)) want.push(state.country);
  const have = [...sel.options].map((x) => x.value);
  if (want.join() !== have.join()) {
    sel.replaceChildren(...want.map((cc) => { const opt = el('option', cc || 'every country'); opt.value = cc; return opt; }));
    sel.value = state.country;
  }
  $('#hours-of').textContent = o.country ? ' in ' + o.country : '';
}

function overview(o) {
  currency = o.current.currency || currency;
  state.last = o;
  state.overviews += 1;
  $('#banner').hidden = true;
  tiles(o);
  funnel(o);
  series('series', o.days, 86400);
  series('hours', o.hours, 3600);
  countryPicker(o);
  countries(o);
  tables(o);
  buckets(o);
  const s = $('#status');
  s.textContent = 'live · ' + o.bucket + ' · read ' + new Date(o.read_at).toLocaleTimeString();
  s.className = 'status';
}

function unavailable(message) {
  const b = $('#banner');
  b.textContent = message;
  b.hidden = false;
  $('#status').textContent = 'figures unavailable';
  $('#status').className = 'status stale';
}

// ---- pipeline ----
const sum = (samples, name, pred = () => true) => samples.filter((s) => s.name === name && pred(s.labels)).reduce((a, s) => a + s.value, 0);
function pipeline(p) {
  state.pipelines += 1;
  const now = Date.parse(p.read_at) / 1000;
  const before = state.previousScrape;
  const rate = (addr, f) => {
    const old = before && before.byAddr[addr];
    const cur = p.instances.find((i) => i.address === addr);
    if (!old || !cur || !cur.up) return '–';
    const dt = now - before.at;
    return dt > 0 ? (Math.max(0, f(cur.samples) - f(old.samples)) / dt).toFixed(0) : '–';
  };
  rows($('#instances tbody'), p.instances.map((i) => {
    const s = i.samples;
    const q = (x) => { const m = s.find((v) => v.name === 'analytics_freshness_seconds' && v.labels.quantile === x); return m ? m.value.toFixed(2) + ' s' : '–'; };
    const count = sum(s, 'analytics_flush_seconds_count');
    return [i.address, (i.healthy ? 'healthy' : 'UNHEALTHY') + ' (' + i.health + ')',
      rate(i.address, (x) => sum(x, 'analytics_events_total', (l) => l.outcome === 'counted')),
      rate(i.address, (x) => sum(x, 'analytics_persisted_records_total')),
      int(sum(s, 'analytics_consumer_lag')), q('0.5') + ' / ' + q('0.99'),
      rate(i.address, (x) => sum(x, 'analytics_firestore_writes_total')),
      sum(s, 'analytics_doc_writes_per_second_max').toFixed(1),
      count ? (sum(s, 'analytics_flush_seconds_sum') / count).toFixed(2) + ' s' : '–',
      int(sum(s, 'analytics_dead_lettered_total'))];
  }));
  const all = p.instances.flatMap((i) => i.samples);
  const by = (name, label, pred = () => true) => {
    const m = new Map();
    for (const s of all.filter((x) => x.name === name && label in x.labels && pred(x.labels))) m.set(s.labels[label], (m.get(s.labels[label]) || 0) + s.value);
    return [...m.entries()].sort((a, b) => b[1] - a[1]).map(([k, v]) => [k, int(v)]);
  };
  rows($('#event-types tbody'), by('analytics_events_total', 'type', (l) => l.outcome === 'counted'));
  rows($('#dead-letters tbody'), by('analytics_dead_lettered_total', 'reason'));
  rows($('#lag tbody'), by('analytics_consumer_lag', 'partition'));
  state.previousScrape = { at: now, byAddr: Object.fromEntries(p.instances.map((i) => [i.address, i])) };
}

// ---- the stream ----
function connect() {
  if (state.source) state.source.close();
  const src = new EventSource('/api/stream?day=' + encodeURIComponent(state.bucket) + '&country=' + encodeURIComponent(state.country));
  src.addEventListener('overview', (e) => overview(JSON.parse(e.data)));
  src.addEventListener('unavailable', (e) => unavailable(JSON.parse(e.data).error));
  src.addEventListener('pipeline', (e) => pipeline(JSON.parse(e.data)));
  src.onerror = () => { $('#status').textContent = 'reconnecting to the dashboard…'; $('#status').className = 'status stale'; };
  state.source = src;
}
$('#bucket').addEventListener('change', (e) => { state.bucket = e.target.value; connect(); });
$('#country').addEventListener('change', (e) => { state.country = e.target.value; connect(); });

// ---- data browser ----
async function browse(path, token = '') {
  const box = $('#browser');
  const r = await fetch('/api/browse?path=' + encodeURIComponent(path) + '&page_token=' + encodeURIComponent(token));
  const page = await r.json();
  const crumbs = $('#crumbs');
  crumbs.replaceChildren();
  const root = el('a', '(root)'); root.addEventListener('click', () => browse('')); crumbs.append(root);
  const parts = path ? path.split('/') : [];
  parts.forEach((p, i) => {
    const a = el('a', '/ ' + p);
    a.addEventListener('click', () => browse(parts.slice(0, i + 1).join('/')));
    crumbs.append(a);
  });
  if (!r.ok) { box.replaceChildren(el('p', page.error || r.statusText)); return; }
  const list = (title, items, full) => {
    const ul = el('ul');
    for (const item of items) {
      const li = el('li'); const a = el('a', item); a.dataset.path = full(item);
      a.addEventListener('click', () => browse(full(item))); li.append(a); ul.append(li);
    }
    return [el('h3', title), ul];
  };
  const parts2 = [];
  if (page.kind === 'document') {
    parts2.push(el('h3', page.exists ? 'fields (updated ' + page.update_time + ')' : 'no such document (it may hold collections)'));
    if (page.exists) parts2.push(el('pre', JSON.stringify(page.fields, null, 2)));
    parts2.push(...list('collections', page.collections, (c) => path + '/' + c));
  } else if (page.kind === 'collection') {
    parts2.push(...list('documents', page.documents, (d) => d));
  } else {
    parts2.push(...list('collections', page.collections, (c) => c));
  }
  if (page.next) { const more = el('a', 'next page →'); more.addEventListener('click', () => browse(path, page.next)); parts2.push(more); }
  box.replaceChildren(...parts2);
}

connect();
