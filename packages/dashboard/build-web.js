#!/usr/bin/env node
// Bundles the browser app (src/web) into dist/web with esbuild: one script and one stylesheet,
// served by the dashboard from disk. No network at run time, nothing loaded from elsewhere.
'use strict';
const { buildSync } = require('esbuild');
const { copyFileSync, mkdirSync } = require('node:fs');
const { join } = require('node:path');

const out = join(__dirname, 'dist', 'web');
mkdirSync(out, { recursive: true });
buildSync({
  entryPoints: [join(__dirname, 'src', 'web', 'main.ts')],
  outfile: join(out, 'dashboard.js'),
  bundle: true,
  minify: true,
  sourcemap: false,
  target: ['es2020'],
  format: 'iife',
  logLevel: 'warning',
});
copyFileSync(join(__dirname, 'src', 'web', 'style.css'), join(out, 'dashboard.css'));
