#!/usr/bin/env node
// `npm start`: the demo world (operators and shops) from the TypeScript sources, through tsx.
import { register } from 'tsx/esm/api';

register();
const { runDemo } = await import('../src/demo/main.ts');
await runDemo(process.argv.slice(2));
