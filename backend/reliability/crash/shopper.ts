/**
 * One shopper of the crash trial: a real customer agent (the wallet's core) on undici, its wallet
 * store in the memory of the driver process, which is never killed. It buys at both shops while
 * servers die under it, and behaves as the wallet does after a failure: the next buy at that
 * merchant (which first finishes what was left half done), or `recover()`.
 */
import { OperatorPaths } from '@obol/protocol/api';
import { systemClock } from '@obol/protocol/clock';
import { CustomerAgent } from '@obol/protocol/customerAgent';
import { ObolError } from '@obol/protocol/errors';
import { MemoryWalletStore } from '@obol/protocol/walletStore';
import { postJson, undiciHttp } from '../../src/http/client.ts';
import { CRASH_PRODUCTS, crashCatalogue } from './catalogue.ts';
import type { SeededRandom } from './random.ts';

export interface ShopAddress {
  merchantId: string;
  moduleUrl: string;
  currency: string;
}

export interface ShopperSpec {
  name: string;
  operatorUrl: string;
  currency: string;
  adminToken: string;
  trustedRoot: string;
  /** What the operator credits it with at the start, e.g. "SEK:100.00". */
  funds: string;
  /** Smallest deposit it opens, in its currency: a few purchases' worth, so sessions are many. */
  depositMinimum: string;
  sessionTimeoutSec: number;
}

/** How often one purchase is tried before the shopper gives it up (each try after a pause). */
const TRIES_PER_PURCHASE = 6;

export class Shopper {
  readonly agent: CustomerAgent;
  customerId = '';
  /** Products it set out to buy, per merchant (a product is tried at most once per merchant). */
  readonly attempted = new Map<string, Set<string>>();
  /** Purchases whose buy() returned the content. */
  readonly completed: Array<{ merchantId: string; productId: string; receiptId: string }> = [];
  /** Failed tries, by error name (what the shopper saw while servers died). */
  readonly failures = new Map<string, number>();
  gaveUp = 0;

  constructor(
    readonly spec: ShopperSpec,
    private readonly random: SeededRandom,
  ) {
    this.agent = new CustomerAgent({
      store: new MemoryWalletStore(),
      http: undiciHttp,
      clock: systemClock,
      depositPolicy: { minimum: spec.depositMinimum, timeoutSec: spec.sessionTimeoutSec },
      trustedRoots: [spec.trustedRoot],
    });
  }

  /** Registered and funded (retried while its operator is down: the trial may kill it meanwhile). */
  async setUp(): Promise<void> {
    const account = await this.retry(() => this.agent.register(this.spec.operatorUrl, { displayName: this.spec.name }));
    this.customerId = account.customerId;
    // Funding is an administration call with its own random movement id: sent once, and the
    // operator is up (registration just succeeded); a lost answer would be a failed set-up.
    await postJson(
      `${this.spec.operatorUrl}${OperatorPaths.adminFund}`,
      { customerId: this.customerId, amount: this.spec.funds },
      { headers: { authorization: `Bearer ${this.spec.adminToken}` } },
    );
  }

  /** Buys until `stop()` says so or it has bought everything at every shop. */
  async shop(shops: readonly ShopAddress[], stop: () => boolean): Promise<void> {
    while (!stop()) {
      const open = shops.filter((s) => (this.attempted.get(s.merchantId)?.size ?? 0) < CRASH_PRODUCTS);
      if (open.length === 0) return;
      const shop = this.random.pick(open);
      const tried = this.attempted.get(shop.merchantId) ?? new Set<string>();
      this.attempted.set(shop.merchantId, tried);
      const product = this.random.pick(crashCatalogue(shop.currency).filter((p) => !tried.has(p.productId)));
      tried.add(product.productId);
      await this.buyOne(shop, product.productId, product.price);
      await pause(this.random.int(0, 150));
    }
  }

  private async buyOne(shop: ShopAddress, productId: string, price: string): Promise<void> {
    for (let attempt = 1; attempt <= TRIES_PER_PURCHASE; attempt++) {
      try {
        const result = await this.agent.buy({ merchantUrl: shop.moduleUrl, productId, price });
        this.completed.push({ merchantId: shop.merchantId, productId, receiptId: result.receipt.receiptId });
        return;
      } catch (e) {
        const name = e instanceof ObolError ? e.name : `non-catalogue ${(e as Error).name}`;
        this.failures.set(name, (this.failures.get(name) ?? 0) + 1);
        // The wallet's answer to a failure: wait, then click again (the next buy at this merchant
        // finishes a half-done initiation or accept before anything new).
        await pause(this.random.int(200, 1_000));
      }
    }
    this.gaveUp++;
  }

  /**
   * The end of shopping: every session stopped and reported, everything half done finished.
   * Repeated until nothing is owed, within `deadline` (a server may still be starting).
   */
  async finish(deadline: number): Promise<string[]> {
    let problems: string[] = [];
    while (Date.now() < deadline) {
      problems = [];
      try {
        for (const step of await this.agent.recover()) {
          if (step.error) problems.push(`${step.id}: ${step.error.name} ${step.error.message}`);
        }
        for (const tx of await this.agent.listTransactions()) {
          if (tx.state === 'open') await this.agent.endTransaction(tx.id, 'wallet');
        }
      } catch (e) {
        problems.push(`${(e as Error).name}: ${(e as Error).message}`);
      }
      const owed = (await this.agent.listTransactions()).filter((t) => t.state === 'initiating' || t.state === 'open' || t.state === 'closed');
      for (const t of owed) problems.push(`${t.id} still ${t.state}`);
      if (problems.length === 0) return [];
      await pause(1_000);
    }
    return problems;
  }

  private async retry<T>(fn: () => Promise<T>): Promise<T> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (e) {
        const transient = e instanceof ObolError && (e.name === 'UNAVAILABLE' || e.name === 'TIMEOUT' || e.name === 'INTERNAL');
        if (!transient || attempt >= 60) throw e;
        await pause(500);
      }
    }
  }
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
