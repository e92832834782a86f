/**
 * One server of the crash trial as a real child process: started from a command line, known to
 * be up when its health URL answers, killed with SIGKILL (no shutdown code runs: open
 * transactions, pending writes and timers die with it), started again on the same data, and
 * stopped with SIGTERM at the end. Its output goes to a log file per run of the process.
 */
import { type ChildProcess, spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { join } from 'node:path';
import { getJson } from '../../src/http/client.ts';

export interface ServerProcessSpec {
  /** Who it is, e.g. "op-sek" or "shop-sek". */
  name: string;
  command: string;
  args: string[];
  /** GET this until it answers 2xx: the process serves. */
  healthUrl: string;
  logDir: string;
  cwd?: string;
  env?: Record<string, string>;
}

/** How long a (re)started process may take to serve: a first PGlite start (initdb) took over 90 s with three trials on two loaded cores. */
const START_TIMEOUT_MS = 240_000;

export class ServerProcess {
  private child: ChildProcess | undefined;
  private exited: Promise<number | null> | undefined;
  /** Times it was started (the first start included). */
  starts = 0;
  kills = 0;

  constructor(readonly spec: ServerProcessSpec) {}

  get running(): boolean {
    return this.child !== undefined;
  }

  async start(): Promise<void> {
    if (this.child) throw new Error(`${this.spec.name} is already running`);
    this.starts++;
    const log = createWriteStream(join(this.spec.logDir, `${this.spec.name}.${this.starts}.log`));
    const child = spawn(this.spec.command, this.spec.args, {
      env: { ...process.env, ...this.spec.env },
      ...(this.spec.cwd ? { cwd: this.spec.cwd } : {}),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    child.stdout?.pipe(log);
    child.stderr?.pipe(log);
    this.child = child;
    this.exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
    const deadline = Date.now() + START_TIMEOUT_MS;
    let early: number | null | undefined;
    void this.exited.then((code) => {
      early = code;
    });
    for (;;) {
      if (early !== undefined) {
        this.child = undefined;
        throw new Error(`${this.spec.name} exited (code ${early}) before it served; see ${log.path}`);
      }
      try {
        await getJson(this.spec.healthUrl, { timeoutMs: 2_000 });
        return;
      } catch {
        // Not serving yet.
      }
      if (Date.now() > deadline) throw new Error(`${this.spec.name} did not serve within ${START_TIMEOUT_MS} ms; see ${log.path}`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }

  /** kill -9, and wait until the process is gone (its port and files released). */
  async kill9(): Promise<void> {
    const child = this.child;
    if (!child) return;
    this.kills++;
    child.kill('SIGKILL');
    await this.exited;
    this.child = undefined;
  }

  /** A clean stop (SIGTERM: the server closes its database). Killed if it takes too long. */
  async stop(): Promise<void> {
    const child = this.child;
    if (!child) return;
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    await this.exited;
    clearTimeout(timer);
    this.child = undefined;
  }
}
