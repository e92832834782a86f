/**
 * Bidirectional-text controls (embeddings and overrides U+202A–U+202E, isolates U+2066–U+2069,
 * marks U+200E, U+200F and U+061C) make text display in another order than it is written: with a
 * right-to-left override, "eerf si sihT" reads as "This is free". Text from a merchant or a page
 * is shown in the wallet's windows only with them made visible, as [U+202E], so what is read is
 * what is written.
 */
const BIDI_CONTROLS = /[\u202A-\u202E\u2066-\u2069\u200E\u200F\u061C]/g;

export function neutralizeBidi(text: string): string {
  return text.replace(BIDI_CONTROLS, (c) => `[U+${c.codePointAt(0)?.toString(16).toUpperCase().padStart(4, '0')}]`);
}

export function hasBidiControls(text: string): boolean {
  return new RegExp(BIDI_CONTROLS.source).test(text);
}
