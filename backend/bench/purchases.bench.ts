// `npm run bench` (backend): what a purchase costs once the deposit is open, against what opening
// a deposit costs — the point of the design. Real servers on 127.0.0.1 (embedded store), the real
// customer agent over undici keep-alive, secure delivery (FIG 4) on every purchase.
import { systemClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { certToBase64 } from '@obol/protocol/pki';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
import { undiciHttp } from '../src/http/client.ts';
import { startDemoWorld } from '../src/world/demoWorld.ts';

const PURCHASES = Number(process.env.BENCH_PURCHASES ?? 200);
const DEPOSITS = Number(process.env.BENCH_DEPOSITS ?? 30);

const w = await startDemoWorld({ timers: false, adminToken: 'bench-admin-token-0123456789' });
const trustedRoots = [certToBase64(w.world.root.cert)];
try {
  const agent = new CustomerAgent({
    store: new MemoryWalletStore(),
    http: undiciHttp,
    clock: systemClock,
    depositPolicy: { minimum: 'SEK:200.00', timeoutSec: 3600 },
    trustedRoots,
  });
  await agent.register(w.sek.url);
  await agent.login();
  await agent.demoTopUp('SEK:500.00');
  const origin = w.news.url;
  const articles = (await w.news.agent.products()).map((p) => p.productId);
  // Warm up: opens the deposit (FIG 2 across both operators) and buys one article.
  let t = performance.now();
  await agent.buy({ merchantUrl: w.news.moduleUrl, productId: articles[0]!, price: 'EUR:0.03', origin });
  const firstMs = performance.now() - t;

  t = performance.now();
  for (let i = 0; i < PURCHASES; i++) {
    await agent.buy({ merchantUrl: w.news.moduleUrl, productId: articles[i % articles.length]!, price: 'EUR:0.03', origin });
  }
  const purchaseMs = (performance.now() - t) / PURCHASES;

  const opener = new CustomerAgent({ store: new MemoryWalletStore(), http: undiciHttp, clock: systemClock, depositPolicy: { minimum: 'SEK:2.00' }, trustedRoots });
  await opener.register(w.sek.url);
  await opener.login();
  await opener.demoTopUp('SEK:500.00');
  await opener.exchangeTable();
  t = performance.now();
  for (let i = 0; i < DEPOSITS; i++) await opener.openTransaction({ merchantUrl: w.news.moduleUrl, firstPrice: 'EUR:0.03', origin });
  const depositMs = (performance.now() - t) / DEPOSITS;

  const txs = await agent.listTransactions();
  t = performance.now();
  for (const tx of txs) if (tx.transactionId && tx.state === 'open') await agent.endTransaction(tx.transactionId);
  const clearMs = performance.now() - t;

  console.log(`
Purchases through the real servers (Node ${process.version}, embedded store, one shopper at a time)
  first purchase, opening the deposit (FIG 2, two operators) ${firstMs.toFixed(1).padStart(8)} ms
  purchase inside an open deposit (order, deliver, accept, key) ${purchaseMs.toFixed(2).padStart(6)} ms   ${(1000 / purchaseMs).toFixed(0)} purchases/s
  opening a deposit (FIG 2 steps 2–7)                        ${depositMs.toFixed(1).padStart(8)} ms   ${(1000 / depositMs).toFixed(0)} deposits/s
  ending and clearing a session of ${PURCHASES + 1} purchases (FIG 3)       ${clearMs.toFixed(1).padStart(8)} ms
  → operator work per purchase: ${(depositMs / (PURCHASES + 1)).toFixed(3)} ms of deposit opening shared by ${PURCHASES + 1} purchases
`);
} finally {
  await w.close();
}
