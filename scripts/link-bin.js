#!/usr/bin/env node
// npm links the bins of dependencies, never the project's own: link ours into node_modules/.bin
// so that `npx switchyard` and `node_modules/.bin/switchyard` work in a checkout after `npm ci`.
import { mkdirSync, rmSync, symlinkSync, chmodSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const binDir = `${root}node_modules/.bin`;
mkdirSync(binDir, { recursive: true });
const link = `${binDir}/switchyard`;
rmSync(link, { force: true });
symlinkSync('../../bin/switchyard.js', link);
chmodSync(`${root}bin/switchyard.js`, 0o755);
