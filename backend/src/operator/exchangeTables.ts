import { BoundedCache } from '@obol/protocol/boundedCache';
import type { Clock } from '@obol/protocol/clock';
import { ObolError } from '@obol/protocol/errors';
import { type ExchangeTable, signExchangeTable, validateExchangeTable } from '@obol/protocol/exchangeTable';
import type { KeyHandle } from '@obol/protocol/keys';
import type { Signed } from '@obol/protocol/signed';
import type { Db } from '../store/db.ts';

/**
 * The operator's published exchange tables. A table is signed once and served until it nears
 * its expiry; every table ever published is kept, because a deposit is converted at the rate of
 * the table the shopper was shown (identified by its issue time), not at today's.
 */
export class ExchangeTables {
  constructor(
    private readonly db: Db,
    private readonly key: KeyHandle,
    private readonly clock: Clock,
    private readonly operatorId: string,
    private readonly base: string,
    private readonly rates: Record<string, string>,
    private readonly lifetimeMs: number,
  ) {}

  /** The table to publish now: the newest one while it has more than a tenth of its life left. */
  async current(): Promise<Signed<'operator.exchangeTable'>> {
    const now = this.clock.now();
    const [row] = await this.db.query<{ signed: Signed<'operator.exchangeTable'> }>(
      'SELECT signed FROM exchange_tables WHERE expires_at > $1 ORDER BY issued_at DESC LIMIT 1',
      [now + Math.floor(this.lifetimeMs / 10)],
    );
    if (row) return row.signed;
    const table: ExchangeTable = validateExchangeTable({
      operatorId: this.operatorId,
      base: this.base,
      rates: this.rates,
      issuedAt: now,
      expiresAt: now + this.lifetimeMs,
    });
    const signed = await signExchangeTable(table, this.key.signer);
    await this.db.query(
      'INSERT INTO exchange_tables (issued_at, expires_at, signed) VALUES ($1, $2, $3::text::jsonb) ON CONFLICT (issued_at) DO NOTHING',
      [table.issuedAt, table.expiresAt, JSON.stringify(signed)],
    );
    return signed;
  }

  /**
   * Published tables as stored, by issue time: a stored table never changes (it is inserted once
   * and never updated), so every deposit need not read it again. Only what the database holds is
   * kept, never a table this process made but lost the insert of.
   */
  private readonly stored = new BoundedCache<number, ExchangeTable>(64);

  /** The table the shopper was shown, which must still be in force. */
  async shown(issuedAt: number): Promise<ExchangeTable> {
    let table = this.stored.get(issuedAt);
    if (!table) {
      const [row] = await this.db.query<{ signed: Signed<'operator.exchangeTable'> }>(
        'SELECT signed FROM exchange_tables WHERE issued_at = $1',
        [issuedAt],
      );
      if (!row) throw new ObolError('EXCHANGE_TABLE_MISSING', 'the exchange table shown to the shopper is not one we published');
      table = validateExchangeTable(row.signed.body);
      this.stored.set(issuedAt, table);
    }
    if (table.expiresAt <= this.clock.now()) {
      throw new ObolError('EXCHANGE_TABLE_EXPIRED', 'the exchange table shown to the shopper has expired: fetch the current one');
    }
    return table;
  }
}
