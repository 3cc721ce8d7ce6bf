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
  // npm install, not npm ci: this registry serves only this platform's native packages, so the
  // lock cannot list other platforms' optional ones and npm ci would call it out of sync. npm
  // install still installs the locked versions.
  console.log('dd: installing dependencies (npm install)');
  execSync('npm install --no-audit --no-fund', { cwd: root, stdio: 'inherit' });
}
