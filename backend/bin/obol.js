#!/usr/bin/env node
// The `obol` command: runs the TypeScript sources through tsx (no separate build step).
import { register } from 'tsx/esm/api';

register();
await import('../src/cli.ts');
