// The client's real transport (@dd/comm) against a minimal scheduler + worker made of comm
// Servers: register-client, the two-way stream, scheduler rpcs and direct worker get-data.

import { NO_REPLY, Server, type Comm, type HandlerContext } from '@dd/comm';
import { decodeTaskSpec, substituteKeyRefs, type TaskDefinition, type UpdateGraphMsg } from '@dd/protocol';
import { Client } from '../src/index';

describe('Client over @dd/comm', () => {
  let scheduler: Server;
  let worker: Server;
  const store = new Map<string, unknown>();
  const streamOps: string[] = [];
  let clientComm: Comm | undefined;

  beforeAll(async () => {
    worker = new Server({
      name: 'mini-worker',
      handlers: {
        'get-data': (msg: { keys: string[] }) => ({ status: 'OK', data: Object.fromEntries(msg.keys.filter((k) => store.has(k)).map((k) => [k, store.get(k)])) }),
        'update-data': (msg: { data: Record<string, unknown> }) => {
          for (const [k, v] of Object.entries(msg.data)) store.set(k, v);
          return { nbytes: Object.fromEntries(Object.keys(msg.data).map((k) => [k, 8])) };
        },
      },
    });
    await worker.listen('tcp://127.0.0.1:0');
    scheduler = new Server({
      name: 'mini-scheduler',
      handlers: {
        'register-client': async (_msg: unknown, ctx: HandlerContext) => {
          clientComm = ctx.comm;
          await ctx.comm.write({ status: 'OK', result: { schedulerId: 'mini', address: scheduler.address } });
          await ctx.server.handleStream(ctx.comm);
          return NO_REPLY;
        },
        'who-has': (msg: { keys: string[] }) => Object.fromEntries(msg.keys.map((k) => [k, store.has(k) ? [worker.address] : []])),
        identity: () => ({
          type: 'Scheduler', id: 'mini', address: scheduler.address, started: 0,
          workers: { [worker.address]: { address: worker.address, name: 'w', host: '127.0.0.1', nthreads: 1, memoryLimit: 0, resources: {}, lastSeen: 0 } },
        }),
        'update-data': (msg: { whoHas: Record<string, string[]> }) => {
          for (const k of Object.keys(msg.whoHas)) void clientComm?.write({ op: 'key-in-memory', key: k });
          return null;
        },
      },
      streamHandlers: {
        'update-graph': (msg: UpdateGraphMsg) => {
          streamOps.push(msg.op);
          const out: unknown[] = [];
          for (const t of msg.tasks as TaskDefinition[]) {
            const spec = decodeTaskSpec(t.spec);
            if (spec.fn.kind !== 'source') continue;
            const fn = new Function(`return (${spec.fn.source}\n);`)() as (...a: unknown[]) => unknown;
            store.set(t.key, fn(...(substituteKeyRefs(spec.args, (k) => store.get(k)) as unknown[])));
            out.push({ op: 'key-in-memory', key: t.key });
          }
          void clientComm?.write(out);
        },
        'client-releases-keys': (msg: { op: string }) => void streamOps.push(msg.op),
        'close-client': (msg: { op: string }) => void streamOps.push(msg.op),
      },
    });
    await scheduler.listen('tcp://127.0.0.1:0');
  });

  afterAll(async () => {
    await scheduler.close();
    await worker.close();
  });

  test('submit, gather, scatter and close over tcp', async () => {
    const client = await Client.connect(scheduler.address, { heartbeatIntervalMs: 0 });
    expect(client.schedulerId).toBe('mini');
    const xs = client.map((x: number) => x * 10, [1, 2, 3]);
    const total = client.submit((a: number[]) => a.reduce((s, v) => s + v, 0), xs as never);
    expect(await total).toBe(60);
    expect(await client.gather({ xs })).toEqual({ xs: [10, 20, 30] });
    const buf = client.scatter(Buffer.from('hello'));
    expect(Buffer.from((await buf) as Uint8Array).toString()).toBe('hello');
    total.release();
    await client.close();
    await new Promise((r) => setTimeout(r, 50));
    expect(streamOps).toEqual(['update-graph', 'client-releases-keys', 'close-client']);
  });
});
