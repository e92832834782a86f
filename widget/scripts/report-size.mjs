// Prints the size of the widget bundle (raw and gzip) next to its ceiling, and fails the build
// (exit 1) when the gzip size is over that ceiling, or when the bundle has what a strict CSP would
// block (eval, new Function) or pulled in what must stay out of a merchant page. The ceiling is
// checked here, on every build, so that the size cannot regress without someone seeing it fail.
//
// `--json <file>` (used by `npm run bench -w widget`) also prints issue 13's bench line "Widget
// under 10 KB gzip" (the figure, the target, their ratio, met or what is missing) and writes it.
import { readFileSync, writeFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

/**
 * NO-REGRESSION ceiling, lowered with issue 13's size work from 14,464 B to 14,000 B: the bundle
 * went from 14,461 to 13,964 B gzip with every feature kept (a tighter bridge client, buy element,
 * payments, quotes and money; a leaner stylesheet; no dead code). The room is for error codes
 * and sentences, which every new refusal adds; anything bigger should be measured with
 * `size:modules` first. Lower it when the bundle shrinks; raise it only with a reason in the commit.
 * It is not the goal: see TARGET_GZIP.
 */
const CEILING_GZIP = 14_000;
/** Issue 13's target: the widget under 10 KB gzip (10,240 B). Not met yet; the bench line says by how much. */
const TARGET_GZIP = 10 * 1024;
/** Preact's core in this bundle, gzipped on its own (`npm run size:modules -w widget`). */
const PREACT_GZIP_APPROX = 4_500;

const file = new URL('../dist/obol-widget.js', import.meta.url);
const code = readFileSync(file);
const text = code.toString('utf8');
const forbidden = [
  [/\beval\s*\(/, 'eval('],
  [/new\s+Function\s*\(/, 'new Function('],
  [/\bFunction\s*\(\s*["'`]/, 'Function("…")'],
  [/@peculiar|x509|asn1/i, 'PKI code (@peculiar/x509)'],
  [/~kind|TypeBox/, 'TypeBox'],
];
const found = forbidden.filter(([re]) => re.test(text)).map(([, name]) => name);
const gzip = gzipSync(code, { level: 9 }).length;
const n = (x) => x.toLocaleString('en-US');
console.log(
  `widget/dist/obol-widget.js: ${(code.length / 1024).toFixed(1)} KB, ${(gzip / 1024).toFixed(1)} KB gzip ` +
    `(${n(gzip)} bytes gzip -9; ceiling ${n(CEILING_GZIP)}, ` +
    (gzip <= CEILING_GZIP ? `${n(CEILING_GZIP - gzip)} to spare` : `OVER by ${n(gzip - CEILING_GZIP)}`) +
    `; issue 13's target ${n(TARGET_GZIP)})`,
);
const jsonAt = process.argv.indexOf('--json');
if (jsonAt > 0) {
  const out = process.argv[jsonAt + 1];
  if (!out) throw new Error('--json needs a file name');
  const met = gzip <= TARGET_GZIP;
  const gap = gzip - TARGET_GZIP;
  const figure = {
    figure: 'widget bundle, gzip -9',
    file: 'widget/dist/obol-widget.js',
    bytes: gzip,
    minifiedBytes: code.length,
    target: 'under 10 KB gzip',
    targetBytes: TARGET_GZIP,
    ratio: Number((gzip / TARGET_GZIP).toFixed(3)),
    met,
    ...(met ? {} : { missingBytes: gap, preactBytesApprox: PREACT_GZIP_APPROX }),
    ceilingBytes: CEILING_GZIP,
  };
  writeFileSync(out, `${JSON.stringify(figure, null, 2)}\n`);
  const verdict = met
    ? 'met'
    : `missed: ${n(gap)} B over (${((gap / gzip) * 100).toFixed(0)} % of the bundle to cut). Preact itself is ~${n(PREACT_GZIP_APPROX)} B, ` +
      `so the widget's own code (~${n(gzip - PREACT_GZIP_APPROX)} B) would have to shrink to ~${n(TARGET_GZIP - PREACT_GZIP_APPROX)} B`;
  console.log(`| widget, gzip | ${n(gzip)} B | target under ${n(TARGET_GZIP)} B | ${(gzip / TARGET_GZIP).toFixed(2)}× | ${verdict} |`);
}
let failed = false;
if (gzip > CEILING_GZIP) {
  console.error(
    `widget bundle is over its size ceiling: ${n(gzip)} bytes gzip > ${n(CEILING_GZIP)} (by ${n(gzip - CEILING_GZIP)}). ` +
      'See what grew with `npm run size:modules -w widget` before raising the ceiling.',
  );
  failed = true;
}
if (found.length) {
  console.error(`widget bundle contains ${found.join(', ')}`);
  failed = true;
}
if (failed) process.exit(1);
