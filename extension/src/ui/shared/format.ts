import { displayAmount, parseAmount } from '@obol/protocol/money';

/** "SEK:0.34" → "0.34 SEK"; anything unreadable is shown as it is. */
export function money(wire: string | undefined): string {
  if (!wire) return '—';
  try {
    return displayAmount(parseAmount(wire));
  } catch {
    return wire;
  }
}

/** Digits only, for an input field: "SEK:20.00" → "20.00". */
export function digits(wire: string): string {
  return wire.includes(':') ? (wire.split(':')[1] ?? '') : wire;
}

export function currencyOf(wire: string): string {
  return wire.split(':')[0] ?? '';
}

export function timeLeft(expiresAt: number | undefined, now: number): string {
  if (expiresAt === undefined) return '—';
  const s = Math.max(0, Math.round((expiresAt - now) / 1000));
  if (s === 0) return 'expired';
  const m = Math.floor(s / 60);
  return m > 0 ? `${m} min ${s % 60} s` : `${s} s`;
}

export function when(ms: number | undefined): string {
  if (ms === undefined) return '—';
  return new Date(ms).toLocaleString();
}

export function download(filename: string, data: unknown): void {
  const blob = new Blob([JSON.stringify(data, null, 2)], { type: 'application/json' });
  const url = URL.createObjectURL(blob);
  const a = document.createElement('a');
  a.href = url;
  a.download = filename;
  a.click();
  setTimeout(() => URL.revokeObjectURL(url), 10_000);
}

export function decodeText(base64url: string): string {
  const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
  const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
  return new TextDecoder().decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)));
}
