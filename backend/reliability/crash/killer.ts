/**
 * The killer: at seeded random moments it sends SIGKILL to a seeded random server process and
 * starts it again on the same data, after a short seeded down time. One kill at a time; the
 * shoppers keep buying throughout.
 */
import type { SeededRandom } from './random.ts';
import type { ServerProcess } from './serverProcess.ts';

export interface KillerOptions {
  kills: number;
  /** Pause between one restart and the next kill, ms (uniform in [min, max]). */
  gapMs: readonly [number, number];
  /** How long a killed process stays down, ms. */
  downMs: readonly [number, number];
}

export interface KillEvent {
  at: number;
  process: string;
  downMs: number;
  restartMs: number;
}

export async function runKiller(processes: readonly ServerProcess[], random: SeededRandom, o: KillerOptions, log: (line: string) => void): Promise<KillEvent[]> {
  const events: KillEvent[] = [];
  for (let i = 0; i < o.kills; i++) {
    await pause(random.int(o.gapMs[0], o.gapMs[1]));
    const victim = random.pick(processes);
    const downMs = random.int(o.downMs[0], o.downMs[1]);
    const at = Date.now();
    await victim.kill9();
    await pause(downMs);
    const restarting = Date.now();
    await victim.start();
    const event = { at, process: victim.spec.name, downMs, restartMs: Date.now() - restarting };
    events.push(event);
    log(`kill ${i + 1}/${o.kills}: ${event.process} down ${downMs} ms, served again after ${event.restartMs} ms`);
  }
  return events;
}

function pause(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}
