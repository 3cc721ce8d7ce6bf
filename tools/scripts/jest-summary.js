#!/usr/bin/env node
// Reads jest's --json output and prints the plain line CI reads: "N passed, N failed".
// A suite that failed to run (syntax error, crash) counts as a failure even with no test in it.
'use strict';
const fs = require('node:fs');

const file = process.argv[2];
let report;
try {
  report = JSON.parse(fs.readFileSync(file, 'utf8'));
} catch (err) {
  console.error(`jest-summary: cannot read ${file}: ${err.message}`);
  console.log('0 passed, 1 failed');
  process.exit(1);
}
const brokenSuites = report.testResults.filter((s) => s.status === 'failed' && s.assertionResults.length === 0).length;
const passed = report.numPassedTests;
const failed = report.numFailedTests + brokenSuites + (report.numRuntimeErrorTestSuites && !brokenSuites ? report.numRuntimeErrorTestSuites : 0);
const skipped = report.numPendingTests + report.numTodoTests;
console.log(skipped > 0 ? `${passed} passed, ${failed} failed, ${skipped} skipped` : `${passed} passed, ${failed} failed`);
process.exit(failed > 0 || passed === 0 ? 1 : 0);
