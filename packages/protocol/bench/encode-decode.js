// Micro-benchmark of encodeMessage/decodeMessage on the built package (run `npx turbo run build
// --filter=@dd/protocol` first):  node packages/protocol/bench/encode-decode.js [seconds-per-case]
'use strict';
const { encode, decode } = require('@msgpack/msgpack');
const { encodeMessage, decodeMessage, packFrames, unpackFrames } = require('../dist');

const seconds = Number(process.argv[2] ?? 1);

function bench(name, fn) {
  for (let i = 0; i < 20000; i++) fn(); // warm-up
  let n = 0;
  const start = process.hrtime.bigint();
  const deadline = start + BigInt(Math.round(seconds * 1e9));
  let now = start;
  while (now < deadline) {
    for (let i = 0; i < 1000; i++) fn();
    n += 1000;
    now = process.hrtime.bigint();
  }
  const ns = Number(now - start) / n;
  console.log(`${name.padEnd(52)} ${(1e9 / ns / 1e6).toFixed(2).padStart(7)} M ops/s  ${ns.toFixed(0).padStart(7)} ns/op`);
}

const small = { op: 'task-finished', key: 'inc-abc', nbytes: 8 };
const medium = {
  op: 'compute-task', key: 'inc-4bd6a1f1c9c1b8f6e1d2a3b4c5d6e7f8', priority: [0, 1, 17], duration: 0.5,
  who_has: { 'x-1': ['tcp://10.0.0.1:4000'], 'x-2': ['tcp://10.0.0.2:4000'] }, nbytes: { 'x-1': 80, 'x-2': 96 },
  resource_restrictions: {}, annotations: {}, stimulus_id: 'compute-task-1700000000.123',
};
const withBuffer = { op: 'get-data-response', data: { 'x-1': Buffer.alloc(1 << 20, 1) } };
const smallFrames = encodeMessage(small);
const mediumFrames = encodeMessage(medium);
const bufferFrames = encodeMessage(withBuffer);
const rawSmall = encode(small);

console.log(`node ${process.version}, ${seconds}s per case`);
bench('baseline @msgpack/msgpack encode (small)', () => encode(small));
bench('baseline @msgpack/msgpack decode (small)', () => decode(rawSmall));
bench('encodeMessage (small)', () => encodeMessage(small));
bench('decodeMessage (small)', () => decodeMessage(smallFrames));
bench('encode+decode round trip (small)', () => decodeMessage(encodeMessage(small)));
bench('encode+pack+unpack+decode (small)', () => decodeMessage(unpackFrames(packFrames(encodeMessage(small)))));
bench('encode+decode round trip (medium compute-task)', () => decodeMessage(encodeMessage(medium)));
bench('encodeMessage (1 MiB Buffer, zero-copy)', () => encodeMessage(withBuffer));
bench('decodeMessage (1 MiB Buffer, zero-copy)', () => decodeMessage(bufferFrames));
void mediumFrames;
