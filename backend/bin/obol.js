#!/usr/bin/env node
// The `obol` command: the compiled bundle (backend/dist/cli.js, made by `npm run build`), or the
// TypeScript sources when they are newer than the bundle (see compiled.js).
import { load } from './compiled.js';

await load('cli', 'src/cli.ts');
