// Comm benchmark: dd's Server + rpc and dd's tcp comm against raw Node `net` sockets doing the
// same work. Servers run in a forked child process (the honest setup: no shared event loop).
//
//   node tools/bench/dist/comm-bench.js [--calls 5000] [--total-mib 256] [--message-mib 8] [--rounds 3]
//
// (1) rpc latency: sequential calls of a tiny op (dd: pool.rpc(addr).call('ping') through
//     Server; raw: a 4-byte-length-prefixed "ping" answered by "pong" on a net socket, both
//     padded to the byte sizes of dd's packed request and reply, Nagle off on both ends). Also
//     CPU time per call in the client and in the server process (less sensitive to machine
//     load than latency, and on a busy 2-core machine latency tracks the sum of the two).
// (2) bulk: total-mib of data in message-mib messages, client -> server; the server must hold
//     each message as one contiguous buffer (dd: decoded message; raw: the reassembled frame)
//     and answers once it has them all. Both honour socket backpressure.

import { fork } from 'node:child_process';
import { randomFillSync } from 'node:crypto';
import { connect as netConnect, createServer, type AddressInfo, type Socket } from 'node:net';
import { ConnectionPool, Server, connect, silentLogger, type HandlerContext } from '@dd/comm';
import { encodeMessage, packFrames } from '@dd/protocol';

/** Wire sizes of dd's rpc request and reply for the tiny op, so the raw series moves the same bytes. */
const DD_REQUEST_BYTES = packFrames(encodeMessage({ op: 'ping' })).byteLength;
const DD_REPLY_BYTES = packFrames(encodeMessage({ status: 'OK', result: 'pong' })).byteLength;

/** A raw message of `total` bytes on the wire: u32 length prefix, then `word` zero-padded. */
function rawMessage(word: string, total: number): Buffer {
  const b = Buffer.alloc(total);
  b.writeUInt32LE(total - 4, 0);
  b.write(word, 4, 'latin1');
  return b;
}

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
    if (m === 'cpu') process.send?.({ cpu: process.cpuUsage() });
    if (m === 'exit') {
      await dd.close();
      raw.close();
      process.exit(0);
    }
  });
}

/**
 * Raw protocol: [u32 length][payload]. A payload "ping" is answered with "pong" (both padded
 * to dd's sizes); a
 * payload starting with "BULK" announces n messages and is answered with "done" after the n
 * messages have been reassembled.
 */
function serveRaw(socket: Socket): void {
  socket.setNoDelay(true);
  let chunks: Buffer[] = [];
  let buffered = 0;
  let bulkRemaining = 0;
  const pong = rawMessage('pong', DD_REPLY_BYTES);
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
  /** CPU time (user + system) per call in this process and in the server process. */
  clientCpuUs: number;
  serverCpuUs: number;
}

function summarize(samples: number[], clientCpuUs: number, serverCpuUs: number): LatencyResult {
  const sorted = [...samples].sort((a, b) => a - b);
  return { medianUs: percentile(sorted, 50), p99Us: percentile(sorted, 99), clientCpuUs, serverCpuUs };
}

function cpuMicros(u: NodeJS.CpuUsage): number {
  return u.user + u.system;
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
async function latencies(
  addresses: { dd: string; raw: number },
  calls: number,
  serverCpu: () => Promise<number>,
): Promise<{ raw: LatencyResult; dd: LatencyResult }> {
  const pool = new ConnectionPool({ limit: 4 });
  const r = pool.rpc(addresses.dd);
  const { socket, next } = await rawClient(addresses.raw);
  const ping = rawMessage('ping', DD_REQUEST_BYTES);
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
  const series = [
    { call: rawCall, samples: [] as number[], clientCpu: 0, serverCpu: 0 },
    { call: ddCall, samples: [] as number[], clientCpu: 0, serverCpu: 0 },
  ];
  const blocks = 10;
  for (let b = 0; b < blocks; b++) {
    for (const s of series) {
      const server0 = await serverCpu();
      const client0 = process.cpuUsage();
      for (let i = 0; i < calls / blocks; i++) {
        const t0 = process.hrtime.bigint();
        await s.call();
        s.samples.push(Number(process.hrtime.bigint() - t0) / 1000);
      }
      s.clientCpu += cpuMicros(process.cpuUsage(client0));
      s.serverCpu += (await serverCpu()) - server0;
    }
  }
  socket.destroy();
  await pool.close();
  const [raw, dd] = series.map((s) => summarize(s.samples, s.clientCpu / s.samples.length, s.serverCpu / s.samples.length));
  return { raw: raw!, dd: dd! };
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
    console.log(`rpc: ${args.calls} sequential calls each (after 1000 warm-up), raw and dd interleaved in 10 blocks, ${DD_REQUEST_BYTES}/${DD_REPLY_BYTES}-byte request/reply on the wire for both; bulk: ${args.totalMiB} MiB in ${args.messageMiB} MiB messages, median of ${args.rounds} rounds\n`);

    const serverCpu = (): Promise<number> => {
      child.send('cpu');
      return new Promise((resolve) => child.once('message', (m) => resolve(cpuMicros((m as { cpu: NodeJS.CpuUsage }).cpu))));
    };
    const { raw: rawLat, dd: ddLat } = await latencies(addresses, args.calls, serverCpu);

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
      ['rpc cpu/call client', `${rawLat.clientCpuUs.toFixed(1)} us`, `${ddLat.clientCpuUs.toFixed(1)} us`, `${(ddLat.clientCpuUs / rawLat.clientCpuUs).toFixed(2)}x`],
      ['rpc cpu/call server', `${rawLat.serverCpuUs.toFixed(1)} us`, `${ddLat.serverCpuUs.toFixed(1)} us`, `${(ddLat.serverCpuUs / rawLat.serverCpuUs).toFixed(2)}x`],
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
