import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import type { FastifyInstance } from 'fastify';
import type { ProductSummary } from '../merchant/catalogue.ts';

/**
 * A demo shop's own pages: the product list with the Obol widget on it — one script tag and
 * `<obol-buy>` / `<obol-paywall>` elements, exactly what a merchant adds — under a strict
 * Content-Security-Policy (the widget needs nothing more than 'self').
 */
const WIDGET = fileURLToPath(new URL('../../../widget/dist/obol-widget.js', import.meta.url));
export const SHOP_CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; object-src 'none'; base-uri 'none'; frame-ancestors 'none'";

const esc = (s: string) => s.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);

export interface ShopPageOptions {
  title: string;
  tagline: string;
  /** The products to show (the merchant agent's listing). */
  products: () => Promise<ProductSummary[]>;
  /** 'article': a paywall under each item; 'file': the paywall offers the download. */
  kind: 'article' | 'file';
}

export async function shopPages(app: FastifyInstance, o: ShopPageOptions): Promise<void> {
  app.addHook('onSend', async (_req, reply, payload) => {
    reply.header('content-security-policy', SHOP_CSP);
    reply.header('x-content-type-options', 'nosniff');
    return payload;
  });
  app.get('/obol-widget.js', async (_req, reply) => {
    const code = await readFile(WIDGET, 'utf8').catch(() => undefined);
    if (!code) return reply.status(404).type('text/plain').send('widget not built: run `npm run build`');
    return reply.type('text/javascript; charset=utf-8').send(code);
  });
  app.get('/shop.css', async (_req, reply) => reply.type('text/css').send(CSS));
  app.get('/how-to-get-obol', async (_req, reply) => reply.type('text/html; charset=utf-8').send(page(o.title, HELP)));
  app.get('/', async (_req, reply) => {
    const items = (await o.products())
      .map((p) => {
        const [currency, price] = p.price.split(':') as [string, string];
        const id = `item-${p.productId}`;
        const locked = o.kind === 'article' ? 'The rest of this article is for sale.' : 'The file is for sale.';
        return `<article class="item">
  <h2>${esc(p.title)}</h2>
  <p class="description">${esc(p.description)}</p>
  <obol-buy product="${esc(p.productId)}" price="${esc(price)}" currency="${esc(currency)}" description="${esc(p.title)}" for="${esc(id)}"></obol-buy>
  <obol-paywall id="${esc(id)}" product="${esc(p.productId)}"${o.kind === 'file' ? ` filename="${esc(p.productId)}"` : ''}><p class="locked">${locked}</p></obol-paywall>
</article>`;
      })
      .join('\n');
    return reply.type('text/html; charset=utf-8').send(page(o.title, `<header><h1>${esc(o.title)}</h1><p>${esc(o.tagline)}</p></header>\n<main>\n${items}\n</main>`));
  });
}

function page(title: string, body: string): string {
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width, initial-scale=1">
<title>${esc(title)}</title><link rel="stylesheet" href="/shop.css">
<script src="/obol-widget.js" data-merchant="/obol" data-wallet-help="/how-to-get-obol" defer></script>
</head><body>
${body}
<footer><p>Paid with <a href="/how-to-get-obol">Obol</a>: your bank reserves a small deposit once; each article is a signed click.</p></footer>
</body></html>`;
}

const HELP = `<header><h1>Getting the Obol wallet</h1></header><main>
<ol>
<li>Build it: <code>npm run build</code> in the Obol repository (the demo's <code>npm start</code> does it).</li>
<li>In Chromium, open <code>chrome://extensions</code>, switch on Developer mode, choose “Load unpacked” and pick <code>extension/dist</code>.</li>
<li>Click the Obol icon, choose Svea Bank (SEK) or Banque Euro (EUR), register, and top up with demo money.</li>
<li>Come back and click a price.</li>
</ol></main>`;

const CSS = `body{font:16px/1.5 system-ui,sans-serif;max-width:46rem;margin:2rem auto;padding:0 1rem;color:#1d1d1f}
header h1{margin-bottom:.2rem}header p{color:#555;margin-top:0}
.item{border-top:1px solid #ddd;padding:1rem 0}.item h2{margin:.2rem 0;font-size:1.25rem}
.description{color:#444}.locked{color:#666;font-style:italic}footer{margin-top:2rem;color:#666;font-size:.9rem}
code{background:#f3f3f3;padding:0 .2rem;border-radius:3px}`;
