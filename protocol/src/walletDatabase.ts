import { ObolError } from './errors.ts';
import type {
  AccountRecord,
  ActivityRecord,
  BlockRecord,
  ConsentRecord,
  DeliveryRecord,
  LoginRecord,
  PaymentRecord,
  PaymentState,
  PromptRecord,
  PromptStatus,
  ReceiptRecord,
  ReservationRecord,
  SiteRecord,
  TableRecord,
  TransactionRecord,
} from './walletStore.ts';

/**
 * Every piece of the wallet's state, as typed stores of one database: the extension backs it with
 * IndexedDB (one object store each), the CLI and the tests with memory. Each store and index is
 * declared once here with its record type, and every transaction names the stores it touches up
 * front, so a budget, a purchase record and a receipt change together or not at all.
 *
 * A transaction's body may only await the store calls of that transaction (IndexedDB commits a
 * transaction as soon as it has nothing left to do): no network, no timers inside.
 */
export interface WalletSchema {
  account: { key: 'current'; value: AccountRecord; indexes: never };
  login: { key: 'current'; value: LoginRecord; indexes: never };
  exchangeTable: { key: 'current'; value: TableRecord; indexes: never };
  transactions: { key: string; value: TransactionRecord; indexes: { byTransactionId: string; byCreatedAt: number } };
  receipts: { key: [string, number]; value: ReceiptRecord; indexes: { byTime: number; byPurchase: string } };
  deliveries: { key: [string, number]; value: DeliveryRecord; indexes: never };
  sites: { key: string; value: SiteRecord; indexes: never };
  reservations: { key: string; value: ReservationRecord; indexes: { byOrigin: string } };
  payments: { key: string; value: PaymentRecord; indexes: { byState: PaymentState; byReceipt: string } };
  prompts: { key: string; value: PromptRecord; indexes: { byStatus: PromptStatus; byWindow: number } };
  blocks: { key: [string, string]; value: BlockRecord; indexes: never };
  consent: { key: string; value: ConsentRecord; indexes: never };
  activity: { key: number; value: ActivityRecord; indexes: { byTime: number } };
}

export type StoreName = keyof WalletSchema;
export type KeyOf<N extends StoreName> = WalletSchema[N]['key'];
export type ValueOf<N extends StoreName> = WalletSchema[N]['value'];
export type IndexName<N extends StoreName> = keyof WalletSchema[N]['indexes'] & string;
export type IndexKey<N extends StoreName, I extends IndexName<N>> = WalletSchema[N]['indexes'][I];
export type StoreKey = string | number | ReadonlyArray<string | number>;

export interface StoreShape {
  /** null: the key is given with each put (the singletons `current`). */
  keyPath: string | readonly string[] | null;
  autoIncrement?: boolean;
  indexes?: Record<string, { keyPath: string; unique?: boolean }>;
}

/**
 * The shape of every store, the one description both backings build from. Version 3 added
 * `receipts.byPurchase` (a receipt names the purchase record that asked for it).
 */
export const WALLET_SCHEMA_VERSION = 3;
export const WALLET_STORES: { readonly [N in StoreName]: StoreShape } = {
  account: { keyPath: null },
  login: { keyPath: null },
  exchangeTable: { keyPath: null },
  transactions: { keyPath: 'id', indexes: { byTransactionId: { keyPath: 'transactionId', unique: true }, byCreatedAt: { keyPath: 'createdAt' } } },
  receipts: { keyPath: ['transactionId', 'n'], indexes: { byTime: { keyPath: 'time' }, byPurchase: { keyPath: 'purchaseId' } } },
  deliveries: { keyPath: ['transactionId', 'n'] },
  sites: { keyPath: 'origin' },
  reservations: { keyPath: 'paymentKey', indexes: { byOrigin: { keyPath: 'origin' } } },
  payments: { keyPath: 'key', indexes: { byState: { keyPath: 'state' }, byReceipt: { keyPath: 'receiptKey', unique: true } } },
  prompts: { keyPath: 'id', indexes: { byStatus: { keyPath: 'status' }, byWindow: { keyPath: 'windowId' } } },
  blocks: { keyPath: ['origin', 'documentId'] },
  consent: { keyPath: 'origin' },
  activity: { keyPath: 'id', autoIncrement: true, indexes: { byTime: { keyPath: 'time' } } },
};

export interface IndexAccess<N extends StoreName, I extends IndexName<N>> {
  get(key: IndexKey<N, I>): Promise<ValueOf<N> | undefined>;
  getKey(key: IndexKey<N, I>): Promise<KeyOf<N> | undefined>;
  /** In index order; only the records with this index key when one is given. */
  getAll(key?: IndexKey<N, I>): Promise<ValueOf<N>[]>;
}

export interface StoreAccess<N extends StoreName> {
  get(key: KeyOf<N>): Promise<ValueOf<N> | undefined>;
  /** In key order. */
  getAll(): Promise<ValueOf<N>[]>;
  getAllKeys(): Promise<KeyOf<N>[]>;
  /** Insert or replace. `key` only for stores without a key path. */
  put(value: ValueOf<N>, key?: KeyOf<N>): Promise<void>;
  /** Insert only (an auto-increment store numbers the record). */
  add(value: ValueOf<N>): Promise<void>;
  delete(key: KeyOf<N>): Promise<void>;
  index<I extends IndexName<N>>(name: I): IndexAccess<N, I>;
}

export interface WalletTransaction<S extends StoreName> {
  store<N extends S>(name: N): StoreAccess<N>;
}

export type TransactionMode = 'readonly' | 'readwrite';

export interface WalletDatabase {
  /**
   * Runs `body` in one transaction over `stores`: read-write transactions over the same stores run
   * one after the other, and a body that throws changes nothing.
   */
  transaction<S extends StoreName, T>(stores: readonly S[], mode: TransactionMode, body: (tx: WalletTransaction<S>) => Promise<T>): Promise<T>;
}

/** One read of one store. */
export function readStore<N extends StoreName, T>(db: WalletDatabase, name: N, body: (store: StoreAccess<N>) => Promise<T>): Promise<T> {
  return db.transaction([name], 'readonly', (tx) => body(tx.store(name)));
}

/** One change of one store. */
export function writeStore<N extends StoreName, T>(db: WalletDatabase, name: N, body: (store: StoreAccess<N>) => Promise<T>): Promise<T> {
  return db.transaction([name], 'readwrite', (tx) => body(tx.store(name)));
}

// ───────────────────────────── memory ─────────────────────────────

/** IndexedDB's order of keys: numbers, then strings, then arrays (element by element). */
export function compareKeys(a: unknown, b: unknown): number {
  const rank = (k: unknown) => (typeof k === 'number' ? 0 : typeof k === 'string' ? 1 : 2);
  const ra = rank(a);
  const rb = rank(b);
  if (ra !== rb) return ra - rb;
  if (Array.isArray(a) && Array.isArray(b)) {
    for (let i = 0; i < Math.min(a.length, b.length); i++) {
      const c = compareKeys(a[i], b[i]);
      if (c !== 0) return c;
    }
    return a.length - b.length;
  }
  return (a as number | string) < (b as number | string) ? -1 : (a as number | string) > (b as number | string) ? 1 : 0;
}

function validKey(k: unknown): boolean {
  if (typeof k === 'number') return !Number.isNaN(k);
  if (typeof k === 'string') return true;
  return Array.isArray(k) && k.every(validKey);
}

function keyAt(value: unknown, path: string | readonly string[]): unknown {
  const record = value as Record<string, unknown>;
  return typeof path === 'string' ? record[path] : path.map((p) => record[p]);
}

type Table = Map<string, { key: StoreKey; value: unknown }>;

/**
 * The wallet's database in memory, for the CLI and the tests: the same stores, keys and indexes as
 * IndexedDB, values copied in and out (structured clone, as IndexedDB does), read-write
 * transactions one at a time, and a transaction whose body throws leaves nothing behind.
 */
export class MemoryWalletDatabase implements WalletDatabase {
  private readonly tables = new Map<StoreName, Table>();
  private readonly counters = new Map<StoreName, number>();
  private writing: Promise<unknown> = Promise.resolve();

  transaction<S extends StoreName, T>(stores: readonly S[], mode: TransactionMode, body: (tx: WalletTransaction<S>) => Promise<T>): Promise<T> {
    if (mode === 'readonly') return body(this.view(stores, false).tx);
    const run = this.writing.then(async () => {
      const { tx, working, counters } = this.view(stores, true);
      const result = await body(tx);
      for (const [name, table] of working) this.tables.set(name, table);
      for (const [name, n] of counters) this.counters.set(name, n);
      return result;
    });
    this.writing = run.catch(() => undefined);
    return run;
  }

  private table(name: StoreName): Table {
    let t = this.tables.get(name);
    if (!t) {
      t = new Map();
      this.tables.set(name, t);
    }
    return t;
  }

  /** Stores as this transaction sees them: a read-write one works on copies until it commits. */
  private view<S extends StoreName>(stores: readonly S[], write: boolean) {
    const working = new Map<StoreName, Table>();
    const counters = new Map<StoreName, number>();
    for (const name of stores) working.set(name, write ? new Map(this.table(name)) : this.table(name));
    const tx: WalletTransaction<S> = {
      store: <N extends S>(name: N): StoreAccess<N> => {
        const table = working.get(name);
        if (!table) throw new ObolError('INTERNAL', `store ${name} is not part of this transaction`);
        return this.access(name, table, write, counters);
      },
    };
    return { tx, working, counters };
  }

  private access<N extends StoreName>(name: N, table: Table, write: boolean, counters: Map<StoreName, number>): StoreAccess<N> {
    const shape = WALLET_STORES[name];
    const sorted = () => [...table.values()].sort((a, b) => compareKeys(a.key, b.key));
    const needWrite = () => {
      if (!write) throw new ObolError('INTERNAL', `a read-only transaction cannot change ${name}`);
    };
    const indexed = (index: string) => {
      const def = shape.indexes?.[index];
      if (!def) throw new ObolError('INTERNAL', `no index ${index} on ${name}`);
      return sorted()
        .map((e) => ({ ...e, indexKey: keyAt(e.value, def.keyPath) }))
        .filter((e) => validKey(e.indexKey))
        .sort((a, b) => compareKeys(a.indexKey, b.indexKey) || compareKeys(a.key, b.key));
    };
    const store = (value: ValueOf<N>, explicitKey: KeyOf<N> | undefined, insert: boolean) => {
      needWrite();
      let key: unknown = explicitKey;
      let stored: unknown = structuredClone(value);
      if (shape.keyPath !== null) {
        key = keyAt(stored, shape.keyPath);
        if (key === undefined && shape.autoIncrement && typeof shape.keyPath === 'string') {
          const next = (counters.get(name) ?? this.counters.get(name) ?? 0) + 1;
          counters.set(name, next);
          key = next;
          stored = { ...(stored as object), [shape.keyPath]: next };
        }
      }
      if (!validKey(key)) throw new ObolError('INTERNAL', `a record of ${name} without a valid key`);
      const id = JSON.stringify(key);
      if (insert && table.has(id)) throw new ObolError('CONFLICT', `${name} already holds ${id}`);
      for (const [index, def] of Object.entries(shape.indexes ?? {})) {
        if (!def.unique) continue;
        const k = keyAt(stored, def.keyPath);
        if (!validKey(k)) continue;
        for (const [otherId, e] of table) {
          if (otherId !== id && compareKeys(keyAt(e.value, def.keyPath), k) === 0) throw new ObolError('CONFLICT', `${name}.${index} already holds ${JSON.stringify(k)}`);
        }
      }
      table.set(id, { key: key as StoreKey, value: stored });
    };
    return {
      get: async (key) => structuredClone(table.get(JSON.stringify(key))?.value as ValueOf<N> | undefined),
      getAll: async () => sorted().map((e) => structuredClone(e.value as ValueOf<N>)),
      getAllKeys: async () => sorted().map((e) => structuredClone(e.key as KeyOf<N>)),
      put: async (value, key) => store(value, key, false),
      add: async (value) => store(value, undefined, true),
      delete: async (key) => {
        needWrite();
        table.delete(JSON.stringify(key));
      },
      index: <I extends IndexName<N>>(index: I): IndexAccess<N, I> => {
        const matching = (key?: IndexKey<N, I>) => indexed(index).filter((e) => key === undefined || compareKeys(e.indexKey, key) === 0);
        return {
          get: async (key) => structuredClone(matching(key)[0]?.value as ValueOf<N> | undefined),
          getKey: async (key) => structuredClone(matching(key)[0]?.key as KeyOf<N> | undefined),
          getAll: async (key) => matching(key).map((e) => structuredClone(e.value as ValueOf<N>)),
        };
      },
    };
  }
}
