#!/usr/bin/env node
// `npm start`: the demo world (operators and shops), compiled (backend/dist/demo.js) or from the
// TypeScript sources when they are newer than the build (see compiled.js).
import { load } from './compiled.js';

const { runDemo } = await load('demo', 'src/demo/main.ts');
await runDemo(process.argv.slice(2));
