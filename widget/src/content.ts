import type { BridgeResults } from '@obol/protocol/bridgeWire';
import { ObolError } from '@obol/protocol/errors';
import { fileNameFor } from '@obol/protocol/fileName';

/**
 * What a purchase delivered, decoded once and shared by the paywall and the `obol:paid` event:
 * text types as a string (shown only as text, never parsed into the live page), everything else
 * as bytes offered for download.
 */
export type Delivery =
  | { kind: 'text'; productId: string; contentType: string; text: string; html: boolean; bytes: Uint8Array<ArrayBuffer> }
  | { kind: 'file'; productId: string; contentType: string; bytes: Uint8Array<ArrayBuffer>; filename: string };

export function base64UrlToBytes(s: string): Uint8Array<ArrayBuffer> {
  if (!/^[A-Za-z0-9_-]*={0,2}$/.test(s)) throw new ObolError('MALFORMED', 'delivered content is not base64url');
  // atob takes base64 with or without its padding.
  return Uint8Array.from(atob(s.replace(/=/g, '').replace(/-/g, '+').replace(/_/g, '/')), (c) => c.charCodeAt(0));
}

/** `"text/html; charset=UTF-8"` → `{ type: "text/html", charset: "utf-8" }`. */
export function parseContentType(contentType: string): { type: string; charset: string } {
  const [type = '', ...params] = contentType.split(';');
  let charset = 'utf-8';
  for (const p of params) {
    const m = /^\s*charset\s*=\s*"?([A-Za-z0-9._-]+)"?\s*$/i.exec(p);
    if (m?.[1]) charset = m[1].toLowerCase();
  }
  return { type: type.trim().toLowerCase(), charset };
}

/** One rule for file names, shared with the wallet's receipts (protocol/src/fileName.ts). */
export { fileNameFor };

export function toDelivery(result: BridgeResults['obol_pay']): Delivery {
  const { type, charset } = parseContentType(result.contentType);
  const bytes = base64UrlToBytes(result.content);
  if (type === 'text/plain' || type === 'text/html' || type === 'text/markdown') {
    let text: string;
    try {
      text = new TextDecoder(charset).decode(bytes);
    } catch {
      text = new TextDecoder().decode(bytes); // an unknown charset label: read it as UTF-8
    }
    return { kind: 'text', productId: result.productId, contentType: result.contentType, text, html: type === 'text/html', bytes };
  }
  return {
    kind: 'file',
    productId: result.productId,
    contentType: type || 'application/octet-stream',
    bytes,
    filename: fileNameFor(result.productId, type),
  };
}
