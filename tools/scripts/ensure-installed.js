#!/usr/bin/env node
// Installs the workspace's dependencies when they are missing or older than the manifests, so
// `npm start` and `npm test` work on a fresh clone. A no-op once installed (CI runs `npm ci` first).
'use strict';
const fs = require('node:fs');
const path = require('node:path');
const { execSync } = require('node:child_process');

const root = path.resolve(__dirname, '..', '..');
const marker = path.join(root, 'node_modules', '.package-lock.json');

function mtime(file) {
  try { return fs.statSync(file).mtimeMs; } catch { return 0; }
}

function manifests() {
  const rootManifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  return ['package.json', 'package-lock.json', ...rootManifest.workspaces.map((w) => path.join(w, 'package.json'))]
    .map((f) => path.join(root, f));
}

const installedAt = mtime(marker);
const stale = installedAt === 0 || manifests().some((f) => mtime(f) > installedAt);
if (stale) {
  const lockExists = fs.existsSync(path.join(root, 'package-lock.json'));
  const cmd = installedAt === 0 && lockExists ? 'npm ci --no-audit --no-fund' : 'npm install --no-audit --no-fund';
  console.log(`dd: installing dependencies (${cmd})`);
  execSync(cmd, { cwd: root, stdio: 'inherit' });
}
