/**
 * A billing sink that appends each record as one JSON line to a file: the simplest hand-off to a
 * batch billing system, and the demo's sink.
 *
 * Exactly-once in the file on top of at-least-once delivery: the record ids already in the file
 * are read when it is opened, and a record whose id is there is skipped. So a dispatcher that
 * crashed after the line was written but before the row was marked delivered does not write it
 * twice when it retries. One writer per file: two processes appending to one file would not see
 * each other's ids.
 */
import { type FileHandle, mkdir, open, stat } from 'node:fs/promises';
import { dirname } from 'node:path';
import { ObolError } from '@obol/protocol/errors';
import { type BillingRecord, type BillingSink, checkBillingRecord, checkSinkName } from './record.ts';

export interface JsonlFileSinkOptions {
  /** Sink name in the outbox. Default 'jsonl'. */
  name?: string;
}

interface OpenFile {
  handle: FileHandle;
  ids: Set<string>;
}

export class JsonlFileSink implements BillingSink {
  readonly name: string;
  private file: Promise<OpenFile> | undefined;
  // Appends are serialised so two concurrent deliveries cannot interleave bytes or both miss
  // the same id in the set.
  private tail: Promise<unknown> = Promise.resolve();

  constructor(
    readonly path: string,
    options: JsonlFileSinkOptions = {},
  ) {
    this.name = options.name ?? 'jsonl';
    checkSinkName(this.name);
  }

  deliver(record: BillingRecord): Promise<void> {
    const run = this.tail.then(() => this.append(record));
    this.tail = run.catch(() => {});
    return run;
  }

  /** Record ids in the file (opening it if needed). */
  async recordIds(): Promise<ReadonlySet<string>> {
    return (await this.opened()).ids;
  }

  async close(): Promise<void> {
    // Let queued appends finish first; a delivery after close() simply opens the file again.
    await this.tail;
    const file = this.file;
    this.file = undefined;
    if (file) await (await file.catch(() => undefined))?.handle.close();
  }

  private async append(record: BillingRecord): Promise<void> {
    checkBillingRecord(record);
    const file = await this.opened();
    const id = record.body.recordId;
    if (file.ids.has(id)) return;
    try {
      await file.handle.appendFile(`${JSON.stringify(record)}\n`, 'utf8');
      // Delivered means on disk: the outbox row is marked delivered right after this returns.
      await file.handle.sync();
    } catch (e) {
      // The file may now end in a fragment, or hold the whole line without our knowing it was
      // synced. Reopen before the retry: that cuts a fragment off and rereads the ids, so the
      // retry neither glues onto a fragment nor writes a complete line twice.
      this.file = undefined;
      await file.handle.close().catch(() => {});
      throw e;
    }
    file.ids.add(id);
  }

  private opened(): Promise<OpenFile> {
    if (!this.file) {
      this.file = openFile(this.path);
      // A failed open (say, a corrupt line) is not cached: the next delivery tries again.
      this.file.catch(() => {
        this.file = undefined;
      });
    }
    return this.file;
  }
}

async function openFile(path: string): Promise<OpenFile> {
  await mkdir(dirname(path), { recursive: true });
  const created = !(await stat(path).catch(() => undefined));
  // 'a+': reads start at the beginning, every write goes to the end (O_APPEND).
  const handle = await open(path, 'a+', 0o640);
  try {
    const text = (await handle.readFile()).toString('utf8');
    const end = text.lastIndexOf('\n') + 1;
    if (end < text.length) {
      // A last line without its newline is an append cut short by a crash. It was never
      // acknowledged, so the record is still pending in the outbox and will be written again;
      // cut the fragment off so the next line does not get glued onto it.
      await handle.truncate(Buffer.byteLength(text.slice(0, end), 'utf8'));
      await handle.sync();
    }
    const ids = new Set<string>();
    const lines = text.slice(0, end).split('\n');
    for (let i = 0; i < lines.length; i++) {
      const line = lines[i]!;
      if (line.trim() !== '') ids.add(recordIdOfLine(line, path, i + 1));
    }
    if (created) await syncDirectory(dirname(path));
    return { handle, ids };
  } catch (e) {
    await handle.close().catch(() => {});
    throw e;
  }
}

function recordIdOfLine(line: string, path: string, lineNumber: number): string {
  let parsed: unknown;
  try {
    parsed = JSON.parse(line);
  } catch {
    parsed = undefined;
  }
  const id = (parsed as { body?: { recordId?: unknown } } | undefined)?.body?.recordId;
  // A complete line that is not a record means someone else edited the file; guessing which
  // records it holds could bill twice or never, so refuse to use it.
  if (typeof id !== 'string') {
    throw new ObolError('INTERNAL', `${path} line ${lineNumber} is not a billing record; fix or move the file`);
  }
  return id;
}

/** Make the new file's directory entry durable too, not just its contents. */
async function syncDirectory(dir: string): Promise<void> {
  let handle: FileHandle | undefined;
  try {
    handle = await open(dir, 'r');
    await handle.sync();
  } catch {
    // Some platforms cannot fsync a directory; the file's own fsync is the best they offer.
  } finally {
    await handle?.close().catch(() => {});
  }
}
