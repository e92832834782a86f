/**
 * The shop's dashboard: a small page served by the merchant module at `<module>/admin/`, showing
 * the shop's sales (`GET <module>/admin/sales`) as tables and a chart of sales per day. The page
 * itself holds nothing: it asks for the shop's admin token, keeps it for the tab only
 * (sessionStorage), and sends it as a bearer token with each read, so the dashboard is exactly as
 * protected as the sales route. No inline script or style: the page runs under a strict CSP.
 */
import { MerchantPaths } from '@obol/protocol/api';
import type { FastifyInstance } from 'fastify';

export const DASHBOARD_PATH = MerchantPaths.dashboard;
const SCRIPT_PATH = MerchantPaths.dashboardScript;
const STYLE_PATH = MerchantPaths.dashboardStyle;

const CSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; frame-ancestors 'none'";

const PAGE = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sales — Obol merchant dashboard</title>
<link rel="stylesheet" href="dashboard.css">
<script src="dashboard.js" defer></script>
</head><body>
<h1>Sales</h1>
<form id="login"><label for="token">Shop admin token (from shop.json)</label><br>
<input id="token" type="password" autocomplete="off" required> <button>Show sales</button></form>
<p id="error" role="alert"></p>
<main id="report" hidden>
<p id="summary"></p>
<h2>Sales per day</h2><figure><svg id="chart" role="img" aria-labelledby="chart-title"><title id="chart-title">Sales per day</title></svg></figure>
<h2>By day</h2><table><thead><tr><th scope="col">Day (UTC)</th><th scope="col">Purchases</th><th scope="col">Amount</th></tr></thead><tbody id="days"></tbody></table>
<h2>By product</h2><table><thead><tr><th scope="col">Product</th><th scope="col">Purchases</th><th scope="col">Amount</th></tr></thead><tbody id="products"></tbody></table>
<h2>Trading sessions</h2><table><thead><tr><th scope="col">State</th><th scope="col">Sessions</th><th scope="col">Deposits</th><th scope="col">Spent</th></tr></thead><tbody id="sessions"></tbody></table>
</main>
</body></html>
`;

const STYLE = `  body { font: 15px/1.5 system-ui, sans-serif; margin: 2rem auto; max-width: 52rem; padding: 0 1rem; color: #1d1d1f; }
  h1 { font-size: 1.4rem; } h2 { font-size: 1.1rem; margin-top: 2rem; }
  table { border-collapse: collapse; width: 100%; } th, td { text-align: left; padding: .35rem .5rem; border-bottom: 1px solid #ddd; }
  td.n, th:not(:first-child) { text-align: right; font-variant-numeric: tabular-nums; }
  #error { color: #a4000f; } svg { width: 100%; height: auto; } .bar { fill: #7a5a00; }
  label, button, input { font: inherit; } input { padding: .3rem; min-width: 20rem; } button { padding: .3rem .8rem; }
`;

/** The page's script (plain JavaScript, run in the merchant's browser). */
const SCRIPT = `'use strict';
const $ = (id) => document.getElementById(id);
const KEY = 'obol-shop-admin-token';
function cell(text, numeric) { const td = document.createElement('td'); td.textContent = text; if (numeric) td.className = 'n'; return td; }
function rows(id, lines) {
  const body = $(id); body.replaceChildren();
  for (const cells of lines) { const tr = document.createElement('tr'); cells.forEach((c, i) => tr.append(cell(c, i > 0))); body.append(tr); }
}
function minor(amount) { const [, v] = amount.split(':'); return Number(v.replace('.', '')); }
function chart(days) {
  const svg = $('chart'); const ns = 'http://www.w3.org/2000/svg';
  for (const el of [...svg.querySelectorAll('rect, text')]) el.remove();
  const list = [...days].reverse(); const w = 640, h = 200, pad = 24;
  svg.setAttribute('viewBox', '0 0 ' + w + ' ' + (h + pad));
  const max = Math.max(1, ...list.map((d) => minor(d.amount)));
  const step = list.length ? (w / list.length) : w;
  list.forEach((d, i) => {
    const bh = Math.round((minor(d.amount) / max) * (h - pad));
    const r = document.createElementNS(ns, 'rect');
    const bw = Math.max(1, Math.min(step - 4, 48));
    r.setAttribute('class', 'bar'); r.setAttribute('x', String(i * step + (step - bw) / 2)); r.setAttribute('width', String(bw));
    r.setAttribute('y', String(h - bh)); r.setAttribute('height', String(bh));
    const t = document.createElementNS(ns, 'title'); t.textContent = d.key + ': ' + d.amount + ' (' + d.purchases + ')'; r.append(t);
    svg.append(r);
    if (list.length <= 14) { const l = document.createElementNS(ns, 'text'); l.setAttribute('x', String(i * step + step / 2)); l.setAttribute('y', String(h + 16)); l.setAttribute('text-anchor', 'middle'); l.setAttribute('font-size', '11'); l.textContent = d.key.slice(5); svg.append(l); }
  });
}
async function show(token) {
  $('error').textContent = '';
  const res = await fetch('sales', { headers: { authorization: 'Bearer ' + token } });
  const body = await res.json().catch(() => ({}));
  if (!res.ok) { $('error').textContent = (body.error && body.error.message) || ('HTTP ' + res.status); $('report').hidden = true; return; }
  sessionStorage.setItem(KEY, token);
  $('summary').textContent = 'Sold: ' + body.purchases + ' purchase' + (body.purchases === 1 ? '' : 's') + ', ' + body.total + '.';
  rows('days', body.byDay.map((l) => [l.key, String(l.purchases), l.amount]));
  rows('products', body.byProduct.map((l) => [l.key, String(l.purchases), l.amount]));
  rows('sessions', body.sessions.map((s) => [s.state, String(s.count), s.deposits, s.spent]));
  chart(body.byDay);
  $('report').hidden = false;
}
$('login').addEventListener('submit', (e) => { e.preventDefault(); void show($('token').value); });
const kept = sessionStorage.getItem(KEY); if (kept) void show(kept);
`;

export function serveDashboard(app: FastifyInstance): void {
  const headers = { 'content-security-policy': CSP, 'x-content-type-options': 'nosniff', 'referrer-policy': 'no-referrer', 'cache-control': 'no-store' };
  app.get(DASHBOARD_PATH, async (_request, reply) => reply.headers(headers).type('text/html; charset=utf-8').send(PAGE));
  app.get(SCRIPT_PATH, async (_request, reply) => reply.headers(headers).type('text/javascript; charset=utf-8').send(SCRIPT));
  app.get(STYLE_PATH, async (_request, reply) => reply.headers(headers).type('text/css; charset=utf-8').send(STYLE));
}
