import type {
  AccountRecord,
  LoginRecord,
  ReceiptRecord,
  TableRecord,
  TransactionRecord,
  WalletStore,
} from '@obol/protocol/walletStore';
import type { WalletDb } from './db.ts';

/**
 * The customer agent's store on IndexedDB. Keys are the agent's non-extractable CryptoKeys, stored
 * as they are (IndexedDB clones them; nobody can read them out). IndexedDB copies on the way in
 * and out, as the WalletStore contract asks.
 *
 * `addReceipt` also keeps the delivered content beside the receipt, in the same IndexedDB
 * transaction, from the purchase that is still pending in the transaction record: a purchase the
 * agent finished just before the service worker stopped can still be handed to the page.
 */
export class IdbWalletStore implements WalletStore {
  constructor(private readonly db: WalletDb) {}

  async getAccount(): Promise<AccountRecord | undefined> {
    return this.db.get('account', 'current');
  }
  async putAccount(account: AccountRecord): Promise<void> {
    await this.db.put('account', account, 'current');
  }
  async getLogin(): Promise<LoginRecord | undefined> {
    return this.db.get('login', 'current');
  }
  async putLogin(login: LoginRecord | undefined): Promise<void> {
    if (login === undefined) await this.db.delete('login', 'current');
    else await this.db.put('login', login, 'current');
  }
  async getTable(): Promise<TableRecord | undefined> {
    return this.db.get('exchangeTable', 'current');
  }
  async putTable(table: TableRecord): Promise<void> {
    await this.db.put('exchangeTable', table, 'current');
  }
  async getTransaction(transactionId: string): Promise<TransactionRecord | undefined> {
    return this.db.getFromIndex('transactions', 'byTransactionId', transactionId);
  }
  /** A record by the wallet's own key (also before the operator assigned a TransactionIdentity). */
  async getTransactionById(id: string): Promise<TransactionRecord | undefined> {
    return this.db.get('transactions', id);
  }
  async putTransaction(tx: TransactionRecord): Promise<void> {
    await this.db.put('transactions', tx);
  }
  async listTransactions(): Promise<TransactionRecord[]> {
    return this.db.getAllFromIndex('transactions', 'byCreatedAt');
  }
  async addReceipt(receipt: ReceiptRecord): Promise<void> {
    const t = this.db.transaction(['receipts', 'deliveries', 'transactions'], 'readwrite');
    const txs = await t.objectStore('transactions').index('byTransactionId').get(receipt.transactionId);
    const pending = txs?.pending;
    if (pending && pending.n === receipt.n && pending.content !== undefined) {
      await t.objectStore('deliveries').put({
        transactionId: receipt.transactionId,
        n: receipt.n,
        content: pending.content,
        contentType: pending.contentType ?? receipt.contentType,
      });
    }
    await t.objectStore('receipts').put(receipt);
    await t.done;
  }
  async listReceipts(transactionId?: string): Promise<ReceiptRecord[]> {
    const all =
      transactionId === undefined
        ? await this.db.getAll('receipts')
        : await this.db.getAll('receipts', IDBKeyRange.bound([transactionId, -Infinity], [transactionId, Infinity]));
    return all.sort((a, b) => a.time - b.time || a.n - b.n);
  }
}
