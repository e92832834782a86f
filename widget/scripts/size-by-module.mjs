// Where the widget's bytes go: builds the bundle with a sourcemap (into a temporary folder, so
// dist/ stays what `npm run build` made) and attributes every minified byte to the source file it
// came from, with each file's share gzipped on its own. The gzip column does not add up to the
// bundle's gzip size (gzip finds repeats across files), but it ranks what to cut.
//   npm run size:modules -w widget
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { gzipSync } from 'node:zlib';

const root = fileURLToPath(new URL('..', import.meta.url));
const out = mkdtempSync(join(tmpdir(), 'obol-widget-size-'));
try {
  execFileSync('npx', ['vite', 'build', '--logLevel', 'warn', '--sourcemap', '--outDir', out, '--emptyOutDir'], { cwd: root, stdio: 'inherit' });
  const code = readFileSync(join(out, 'obol-widget.js'), 'utf8');
  const map = JSON.parse(readFileSync(join(out, 'obol-widget.js.map'), 'utf8'));
  const pieces = new Map(); // source name -> its minified text, in order
  const lines = code.split('\n');
  let source = 0; // each segment gives its source index as a delta from the previous one, starting at 0
  map.mappings.split(';').forEach((segments, line) => {
    let column = 0;
    const marks = [];
    for (const segment of segments.split(',').filter(Boolean)) {
      const fields = decodeVlq(segment);
      column += fields[0];
      if (fields.length > 1) source += fields[1]; // the source index is relative to the previous one
      marks.push([column, fields.length > 1 ? source : -1]);
    }
    const text = lines[line] ?? '';
    marks.forEach(([start, src], i) => {
      const name = src < 0 ? '(no source: CSS text, wrapper)' : map.sources[src].replace(/^(\.\.\/)+/, '').replace(/^.*?\/(widget|protocol)\//, '$1/').replace(/.*node_modules\//, '');
      pieces.set(name, (pieces.get(name) ?? '') + text.slice(start, marks[i + 1]?.[0] ?? text.length));
    });
  });
  const rows = [...pieces].map(([name, text]) => [name, text.length, gzipSync(text, { level: 9 }).length]).sort((a, b) => b[1] - a[1]);
  console.log('minified  gzip alone  source');
  for (const [name, min, gz] of rows) console.log(`${String(min).padStart(8)}  ${String(gz).padStart(10)}  ${name}`);
  console.log(`${String(code.length).padStart(8)}  ${String(gzipSync(code, { level: 9 }).length).padStart(10)}  the whole bundle (with its sourcemap comment)`);
} finally {
  rmSync(out, { recursive: true, force: true });
}

/** One sourcemap segment: base64 VLQ numbers (sign in the lowest bit, 5 bits per digit). */
function decodeVlq(segment) {
  const B64 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
  const values = [];
  let value = 0;
  let shift = 0;
  for (const ch of segment) {
    const digit = B64.indexOf(ch);
    value += (digit & 31) << shift;
    if (digit & 32) {
      shift += 5;
    } else {
      values.push(value & 1 ? -(value >>> 1) : value >>> 1);
      value = 0;
      shift = 0;
    }
  }
  return values;
}
