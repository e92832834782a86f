import type { IndexAccess, IndexName, KeyOf, StoreAccess, StoreName, TransactionMode, ValueOf, WalletDatabase, WalletTransaction } from '@obol/protocol/walletDatabase';
import { WALLET_SCHEMA_VERSION, WALLET_STORES } from '@obol/protocol/walletDatabase';
import { ObolError } from '@obol/protocol/errors';
import { type IDBPDatabase, type IDBPTransaction, openDB } from 'idb';

/**
 * The wallet core's database (protocol/src/walletDatabase.ts) on IndexedDB: one object store per
 * store of the schema, built from its one description (WALLET_STORES), so the service worker may
 * be stopped between any two awaits and nothing lives only in memory. Values are stored as they
 * are (IndexedDB clones them; the agent's private keys are non-extractable CryptoKeys nobody can
 * read out).
 */
export const DB_NAME = 'obol-wallet';

/**
 * 1: the first stores; 2: `consent`; 3: `receipts.byPurchase`. Every upgrade creates what the
 * schema names and the database lacks, so any older database arrives at the same shape.
 */
export async function openWalletDb(name = DB_NAME): Promise<IdbWalletDatabase> {
  const db = await openDB(name, WALLET_SCHEMA_VERSION, {
    upgrade(db, _oldVersion, _newVersion, upgrade) {
      for (const [storeName, shape] of Object.entries(WALLET_STORES)) {
        const store = db.objectStoreNames.contains(storeName)
          ? upgrade.objectStore(storeName)
          : db.createObjectStore(storeName, {
              ...(shape.keyPath !== null ? { keyPath: shape.keyPath as string | string[] } : {}),
              ...(shape.autoIncrement ? { autoIncrement: true } : {}),
            });
        for (const [indexName, index] of Object.entries(shape.indexes ?? {})) {
          if (!store.indexNames.contains(indexName)) store.createIndex(indexName, index.keyPath, { unique: index.unique === true });
        }
      }
    },
  });
  return new IdbWalletDatabase(db);
}

// The schema's types are the protocol's; idb is used untyped here and every value crosses this
// one adapter, typed by the store it belongs to.
type AnyTx = IDBPTransaction<unknown, string[], IDBTransactionMode>;

export class IdbWalletDatabase implements WalletDatabase {
  constructor(readonly idb: IDBPDatabase) {}

  async transaction<S extends StoreName, T>(stores: readonly S[], mode: TransactionMode, body: (tx: WalletTransaction<S>) => Promise<T>): Promise<T> {
    const t = this.idb.transaction([...stores], mode) as unknown as AnyTx;
    const tx: WalletTransaction<S> = { store: (name) => storeAccess(t, name) };
    let result: T;
    try {
      result = await body(tx);
    } catch (e) {
      // Nothing of a transaction whose body failed may stay.
      try {
        t.abort();
      } catch {
        // already finished
      }
      await t.done.catch(() => undefined);
      throw e;
    }
    await t.done;
    return result;
  }

  close(): void {
    this.idb.close();
  }
}

function storeAccess<N extends StoreName>(t: AnyTx, name: N): StoreAccess<N> {
  const store = t.objectStore(name);
  return {
    get: async (key) => (await store.get(key as IDBValidKey)) as ValueOf<N> | undefined,
    getAll: async () => (await store.getAll()) as ValueOf<N>[],
    getAllKeys: async () => (await store.getAllKeys()) as KeyOf<N>[],
    put: async (value, key) => {
      await writable(store.put, name).call(store, value, key as IDBValidKey | undefined);
    },
    add: async (value) => {
      await writable(store.add, name).call(store, value);
    },
    delete: async (key) => {
      await writable(store.delete, name).call(store, key as IDBValidKey);
    },
    index: <I extends IndexName<N>>(indexName: I): IndexAccess<N, I> => {
      const index = store.index(indexName);
      return {
        get: async (key) => (await index.get(key as IDBValidKey)) as ValueOf<N> | undefined,
        getKey: async (key) => (await index.getKey(key as IDBValidKey)) as KeyOf<N> | undefined,
        getAll: async (key) => (await index.getAll(key as IDBValidKey | undefined)) as ValueOf<N>[],
      };
    },
  };
}

/** idb types the writing calls as absent on read-only transactions: say so, never skip silently. */
function writable<F>(call: F | undefined, store: string): F {
  if (!call) throw new ObolError('INTERNAL', `a read-only transaction cannot change ${store}`);
  return call;
}
