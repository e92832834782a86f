import type { ArbiterReport, Verdict } from './judge.ts';

const HEADLINE: Record<Verdict, string> = {
  'for-shopper': 'FOR THE SHOPPER',
  'for-merchant': 'FOR THE MERCHANT',
  'evidence-altered': 'THE EVIDENCE WAS ALTERED',
  'key-not-delivered': 'THE MERCHANT OWES THE KEY',
  'cannot-judge': 'CANNOT JUDGE',
};

/** The arbiter's report in plain words, as `obol arbiter judge` prints it. */
export function formatReport(r: ArbiterReport): string {
  const p = r.purchase;
  const lines: string[] = [
    `Obol arbiter — case ${r.caseRef}`,
    `Purchase ${p.n} of transaction ${p.transactionId} at merchant ${p.merchantId} (operator ${p.merchantOperatorId}), evidence presented by the ${r.presentedBy}.`,
    `Accepted: ${p.productId} at ${p.price} (cumulative ${p.cumulative}) on ${p.acceptedAt}.`,
    '',
    `Verdict: ${HEADLINE[r.verdict]}`,
    r.summary,
    '',
  ];
  if (r.promised) {
    lines.push(
      'What the merchant promised (its signed description):',
      `  product      ${r.promised.productId} — ${r.promised.title}`,
      `  description  ${r.promised.description}`,
      `  price        ${r.promised.price}`,
      `  type         ${r.promised.contentType}`,
      `  content      SHA-256 ${r.promised.contentHash}`,
      '',
    );
  } else {
    lines.push('What the merchant promised: unknown (no description the merchant signed).', '');
  }
  if (r.delivered) {
    lines.push(
      `What the merchant delivered (decrypted with K2, unwrapped with the K1 released by ${r.k1ReleasedBy}):`,
      `  ${r.delivered.size} bytes, SHA-256 ${r.delivered.contentHash} — ${r.delivered.matchesPromise ? 'matches the description' : 'does NOT match the description'}`,
      `  first bytes  ${r.delivered.firstBytes}`,
      '',
    );
  } else {
    lines.push('What the merchant delivered: not opened (see the verdict).', '');
  }
  lines.push('Who signed what:');
  for (const s of r.signatures) {
    lines.push(`  ${s.valid ? '✓' : '✗'} ${s.part}: signed by ${s.signer} — ${s.says}`);
  }
  if (r.alterations.length > 0) {
    lines.push('', 'Altered evidence:');
    for (const a of r.alterations) lines.push(`  - ${a}`);
  }
  if (r.findings.length > 0) {
    lines.push('', 'Also found:');
    for (const f of r.findings) lines.push(`  - ${f}`);
  }
  return `${lines.join('\n')}\n`;
}
