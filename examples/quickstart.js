// The npm start example: connects to the local cluster and runs a map, a dependency chain,
// a task that fails, and a scatter. Run on its own with: node examples/quickstart.js tcp://127.0.0.1:8786
'use strict';
const { Client, RemoteError, progress } = require('@dd/client');

// Task functions travel to the workers by source, so they must be self-contained.
const inc = (x) => x + 1;
const add = (x, y) => x + y;
const square = (x) => x * x;
const fail = (x) => { throw new Error(`cannot process ${x}`); };
const total = (xs) => xs.reduce((a, b) => a + b, 0);
const byteLength = (buf) => buf.length;

async function run(address) {
  const client = await Client.connect(address);
  try {
    const info = await client.schedulerInfo();
    console.log(`connected to ${info.address} with ${Object.keys(info.workers).length} workers`);

    const squares = client.map(square, Array.from({ length: 10 }, (_, i) => i));
    await progress(squares); // a bar per task prefix on a terminal (stderr), plain lines otherwise
    console.log('map square 0..9 ->', await client.gather(squares));

    let chain = client.submit(inc, 0);
    for (let i = 0; i < 9; i++) chain = client.submit(inc, chain);
    const sum = client.submit(total, squares);
    console.log('chain of 10 incs ->', await chain, '; sum of squares ->', await sum);
    console.log('add(chain, sum) ->', await client.submit(add, chain, sum));

    try {
      await client.submit(fail, 42);
    } catch (err) {
      if (!(err instanceof RemoteError)) throw err;
      console.log(`a failing task rejects with ${err.name}: ${err.message}`);
    }

    const [data] = client.scatter([Buffer.alloc(1 << 20, 1)]);
    console.log('scattered 1 MiB; its length computed on a worker ->', await client.submit(byteLength, data));
    console.log('who has the scattered data:', await client.whoHas([data]));
  } finally {
    await client.close();
  }
}

module.exports = { run };
if (require.main === module) {
  run(process.argv[2] ?? 'tcp://127.0.0.1:8786').catch((err) => {
    console.error(err);
    process.exitCode = 1;
  });
}
