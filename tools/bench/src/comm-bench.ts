// Comm benchmark: dd's Server + rpc and dd's tcp comm against raw Node `net` sockets doing the
// same work. Servers run in a forked child process (the honest setup: no shared event loop).
//
//   node tools/bench/dist/comm-bench.js [--calls 5000] [--total-mib 256] [--message-mib 8]
//
// (1) rpc latency: sequential calls of a tiny op (dd: pool.rpc(addr).call('ping') through
//     Server; raw: a 4-byte-length-prefixed "ping" echoed as "pong" on a net socket).
// (2) bulk: total-mib of data in message-mib messages, client -> server; the server must hold
//     each message as one contiguous buffer (dd: decoded message; raw: the reassembled frame)
//     and answers once it has them all. Both honour socket backpressure.

import { fork } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { ConnectionPool, Server, connect, silentLogger, type HandlerContext } from '@dd/comm';

interface Args {
  calls: number;
  totalMiB: number;
  messageMiB: number;
  rounds: number;
}

function parseArgs(argv: string[]): Args {
  const get = (name: string, dflt: number): number => {
    const i = argv.indexOf(`--${name}`);
    return i >= 0 && argv[i + 1] !== undefined ? Number(argv[i + 1]) : dflt;
  };
  return { calls: get('calls', 5000), totalMiB: get('total-mib', 256), messageMiB: get('message-mib', 8), rounds: get('rounds', 3) };
}

// ---------------------------------------------------------------- child process: servers

async function runChild(): Promise<void> {
  const dd = new Server({
    name: 'bench',
    logger: silentLogger,
    handlers: {
      ping: () => 'pong',
      sink: async (msg: { count: number }, ctx: HandlerContext) => {
        let bytes = 0;
        for (let i = 0; i < msg.count; i++) {
          const m = (await ctx.comm.read()) as { data: Uint8Array };
          bytes += m.data.byteLength;
        }
        return bytes;
      },
    },
  });
  await dd.listen('tcp://127.0.0.1:0');

  const raw = createServer({ noDelay: true }, (socket) => serveRaw(socket));
  await new Promise<void>((r) => raw.listen(0, '127.0.0.1', r));
  const rawPort = (raw.address() as AddressInfo).port;

  process.send?.({ dd: dd.address, raw: rawPort });
  process.on('message', async (m) => {
    if (m === 'exit') {
      await dd.close();
      raw.close();
      process.exit(0);
    }
  });
}

/**
 * Raw protocol: [u32 length][payload]. A 4-byte payload "ping" is answered with "pong"; a
 * payload starting with "BULK" announces n messages and is answered with "done" after the n
 * messages have been reassembled.
 */
function serveRaw(socket: Socket): void {
  socket.setNoDelay(true);
  let chunks: Buffer[] = [];
  let buffered = 0;
  let bulkRemaining = 0;
  const pong = Buffer.from([4, 0, 0, 0, 0x70, 0x6f, 0x6e, 0x67]);
  const done = Buffer.from([4, 0, 0, 0, 0x64, 0x6f, 0x6e, 0x65]);
  socket.on('data', (chunk: Buffer) => {
    chunks.push(chunk);
    buffered += chunk.length;
    for (;;) {
      if (buffered < 4) return;
      let head = chunks[0]!;
      if (head.length < 4) {
        head = Buffer.concat(chunks);
        chunks = [head];
      }
      const length = head.readUInt32LE(0);
      if (buffered < 4 + length) return;
      const all = chunks.length === 1 ? head : Buffer.concat(chunks, buffered);
      const payload = all.subarray(4, 4 + length); // one contiguous message (copied if it spanned chunks)
      const rest = all.subarray(4 + length);
      chunks = rest.length > 0 ? [rest] : [];
      buffered = rest.length;
      if (bulkRemaining > 0) {
        if (--bulkRemaining === 0) socket.write(done);
      } else if (length >= 8 && payload.toString('latin1', 0, 4) === 'BULK') {
        bulkRemaining = payload.readUInt32LE(4);
      } else {
        socket.write(pong);
      }
    }
  });
  socket.on('error', () => {});
}

// ---------------------------------------------------------------- parent: clients

function percentile(sorted: number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]!;
}

interface LatencyResult {
  medianUs: number;
  p99Us: number;
}

function summarize(samples: number[]): LatencyResult {
  const sorted = [...samples].sort((a, b) => a - b);
  return { medianUs: percentile(sorted, 50), p99Us: percentile(sorted, 99) };
}

function rawClient(port: number): Promise<{ socket: Socket; next(): Promise<Buffer> }> {
  return new Promise((resolve, reject) => {
    const socket = netConnect({ host: '127.0.0.1', port, noDelay: true });
    let chunks: Buffer[] = [];
    let buffered = 0;
    const replies: Buffer[] = [];
    let waiter: ((b: Buffer) => void) | undefined;
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      buffered += chunk.length;
      while (buffered >= 4) {
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, buffered);
        const length = all.readUInt32LE(0);
        if (buffered < 4 + length) {
          chunks = [all];
          return;
        }
        const payload = all.subarray(4, 4 + length);
        const rest = all.subarray(4 + length);
        chunks = rest.length > 0 ? [rest] : [];
        buffered = rest.length;
        if (waiter !== undefined) {
          const w = waiter;
          waiter = undefined;
          w(payload);
        } else replies.push(payload);
      }
    });
    socket.once('error', reject);
    socket.once('connect', () =>
      resolve({
        socket,
        next: () => {
          const r = replies.shift();
          return r !== undefined ? Promise.resolve(r) : new Promise<Buffer>((res) => (waiter = res));
        },
      }),
    );
  });
}

/**
 * Both latency series are measured in interleaved blocks (raw, dd, raw, dd, ...), so that load
 * from other processes on the machine affects both alike.
 */
async function latencies(addresses: { dd: string; raw: number }, calls: number): Promise<{ raw: LatencyResult; dd: LatencyResult }> {
  const pool = new ConnectionPool({ limit: 4 });
  const r = pool.rpc(addresses.dd);
  const { socket, next } = await rawClient(addresses.raw);
  const ping = Buffer.from([4, 0, 0, 0, 0x70, 0x69, 0x6e, 0x67]);
  const rawCall = async (): Promise<void> => {
    socket.write(ping);
    await next();
  };
  const ddCall = async (): Promise<void> => {
    await r.call('ping');
  };
  for (let i = 0; i < 1000; i++) {
    await rawCall();
    await ddCall();
  }
  const rawSamples: number[] = [];
  const ddSamples: number[] = [];
  const blocks = 10;
  for (let b = 0; b < blocks; b++) {
    for (const [call, samples] of [[rawCall, rawSamples], [ddCall, ddSamples]] as const) {
      for (let i = 0; i < calls / blocks; i++) {
        const t0 = process.hrtime.bigint();
        await call();
        samples.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
    }
  }
  socket.destroy();
  await pool.close();
  return { raw: summarize(rawSamples), dd: summarize(ddSamples) };
}

function makePayload(bytes: number): Buffer {
  const b = Buffer.allocUnsafe(bytes);
  randomFillSync(b); // incompressible, so dd's lz4 sampling declines to compress (as for real binary data)
  return b;
}

/** Seconds to move args.totalMiB through dd's tcp comm into the server's handler. */
async function ddBulk(address: string, payload: Buffer, count: number): Promise<number> {
  const comm = await connect(address);
  const t0 = process.hrtime.bigint();
  await comm.write({ op: 'sink', count });
  for (let i = 0; i < count; i++) await comm.write({ op: 'chunk', data: payload });
  const reply = (await comm.read()) as { status: string; result: number };
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (reply.status !== 'OK' || reply.result !== payload.length * count) throw new Error(`bad sink reply ${JSON.stringify(reply)}`);
  await comm.close();
  return seconds;
}

async function rawBulk(port: number, payload: Buffer, count: number): Promise<number> {
  const { socket, next } = await rawClient(port);
  const header = Buffer.alloc(12);
  header.writeUInt32LE(8, 0);
  header.write('BULK', 4, 'latin1');
  header.writeUInt32LE(count, 8);
  const prefix = Buffer.alloc(4);
  prefix.writeUInt32LE(payload.length, 0);
  const t0 = process.hrtime.bigint();
  socket.write(header);
  for (let i = 0; i < count; i++) {
    socket.cork();
    socket.write(prefix);
    socket.write(payload);
    socket.uncork();
    if (socket.writableNeedDrain) await new Promise((r) => socket.once('drain', r));
  }
  const reply = await next();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  if (reply.toString() !== 'done') throw new Error('bad raw bulk reply');
  socket.destroy();
  return seconds;
}

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)]!;
}

async function runParent(args: Args): Promise<void> {
  const child = fork(__filename, ['--child'], { stdio: 'inherit' });
  const addresses = await new Promise<{ dd: string; raw: number }>((resolve, reject) => {
    child.once('message', (m) => resolve(m as { dd: string; raw: number }));
    child.once('error', reject);
    child.once('exit', (code) => reject(new Error(`server process exited with ${code}`)));
  });
  try {
    console.log(`comm benchmark: node ${process.version}, server in a child process (pid ${child.pid}), tcp over loopback`);
    console.log(`rpc: ${args.calls} sequential calls each (after 1000 warm-up), raw and dd interleaved in 10 blocks; bulk: ${args.totalMiB} MiB in ${args.messageMiB} MiB messages, median of ${args.rounds} rounds\n`);

    const { raw: rawLat, dd: ddLat } = await latencies(addresses, args.calls);

    const payload = makePayload(args.messageMiB * 1024 * 1024);
    const count = Math.max(1, Math.round(args.totalMiB / args.messageMiB));
    const mib = (count * payload.length) / (1024 * 1024);
    const rawTimes: number[] = [];
    const ddTimes: number[] = [];
    for (let r = 0; r < args.rounds; r++) {
      rawTimes.push(await rawBulk(addresses.raw, payload, count));
      ddTimes.push(await ddBulk(addresses.dd, payload, count));
    }
    const rawMiBs = mib / median(rawTimes);
    const ddMiBs = mib / median(ddTimes);

    const rows: Array<[string, string, string, string]> = [
      ['measure', 'raw net', 'dd (Server+rpc / tcp comm)', 'dd vs raw'],
      ['rpc median latency', `${rawLat.medianUs.toFixed(1)} us`, `${ddLat.medianUs.toFixed(1)} us`, `${(ddLat.medianUs / rawLat.medianUs).toFixed(2)}x (target <= 1.5x)`],
      ['rpc p99 latency', `${rawLat.p99Us.toFixed(1)} us`, `${ddLat.p99Us.toFixed(1)} us`, `${(ddLat.p99Us / rawLat.p99Us).toFixed(2)}x`],
      [`bulk ${mib} MiB / ${args.messageMiB} MiB msgs`, `${rawMiBs.toFixed(0)} MiB/s`, `${ddMiBs.toFixed(0)} MiB/s`, `${((100 * ddMiBs) / rawMiBs).toFixed(0)}% of raw (target >= 70%)`],
    ];
    const widths = rows[0]!.map((_, c) => Math.max(...rows.map((r) => r[c]!.length)));
    for (const [i, row] of rows.entries()) {
      console.log(row.map((cell, c) => cell.padEnd(widths[c]!)).join(' | '));
      if (i === 0) console.log(widths.map((w) => '-'.repeat(w)).join('-|-'));
    }
  } finally {
    child.send('exit');
    await new Promise((r) => child.once('exit', r));
  }
}

if (process.argv.includes('--child')) {
  void runChild();
} else {
  runParent(parseArgs(process.argv.slice(2))).catch((err: unknown) => {
    console.error(err);
    process.exitCode = 1;
  });
}
