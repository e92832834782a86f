// Prints the size of the widget bundle (raw and gzip), and refuses a bundle that a strict CSP
// would block (eval, new Function) or that pulled in what must stay out of a merchant page.
import { readFileSync } from 'node:fs';
import { gzipSync } from 'node:zlib';

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
console.log(`widget/dist/obol-widget.js: ${(code.length / 1024).toFixed(1)} KB, ${(gzipSync(code, { level: 9 }).length / 1024).toFixed(1)} KB gzip`);
if (found.length) {
  console.error(`widget bundle contains ${found.join(', ')}`);
  process.exit(1);
}
