#!/usr/bin/env node
'use strict';
require('../dist/main.js').main(process.argv).then(
  (code) => { if (typeof code === 'number') process.exitCode = code; },
  (err) => { console.error(`dd-scheduler: ${err && err.message ? err.message : err}`); process.exit(1); },
);
