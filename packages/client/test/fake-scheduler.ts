// A fake scheduler + one worker behind the client's SchedulerLink interface: runs tasks in this
// process (decoding the js run spec like a worker would) so the client's own logic can be tested
// without sockets, scheduler or worker packages.

import { decodeTaskSpec, substituteKeyRefs, type ClientToSchedulerMsg, type SchedulerToClientMsg, type TaskDefinition, type WireError } from '@dd/protocol';
import { CommClosedError } from '@dd/comm';
import { Client } from '../src/index';
import type { LinkFactory, LinkHandlers, SchedulerLink } from '../src/internal';

export const WORKER = 'fake://worker-1';

interface FakeTask {
  def: TaskDefinition;
  state: 'waiting' | 'memory' | 'erred';
  exception?: WireError;
}

export class FakeScheduler {
  readonly sent: ClientToSchedulerMsg[] = [];
  /** The ops of each link.send call (one call is one write on a real link). */
  readonly sends: string[][] = [];
  readonly calls: Array<{ op: string; args: Record<string, unknown> | undefined; worker?: string }> = [];
  readonly data = new Map<string, unknown>();
  readonly tasks = new Map<string, FakeTask>();
  readonly wanted = new Set<string>();
  runs = 0;
  /** When false, tasks wait until run() is called. */
  auto = true;
  /** Report number results inline in key-in-memory, as the real scheduler does for small ones. */
  inline = false;
  handlers: LinkHandlers | undefined;

  /** The current connection's "is it lost" flag (see drop()). */
  private current = { lost: false };

  readonly link: LinkFactory = async (address, handlers) => {
    this.handlers = handlers;
    const connection = (this.current = { lost: false });
    const link: SchedulerLink = {
      address,
      schedulerId: 'fake-scheduler',
      call: async <T>(op: string, args?: Record<string, unknown>) => {
        // As a real comm: a request on a lost connection fails.
        if (connection.lost) throw new CommClosedError(`connection to ${address} is closed`);
        this.calls.push({ op, args });
        return this.onCall(op, args ?? {}) as T;
      },
      callWorker: async <T>(worker: string, op: string, args?: Record<string, unknown>) => {
        this.calls.push({ op, args, worker });
        return this.onWorkerCall(op, args ?? {}) as T;
      },
      send: (msg) => link.sendAll([msg]),
      sendAll: (msgs) => {
        this.sends.push(msgs.map((m) => m.op));
        for (const msg of msgs) {
          this.sent.push(msg);
          this.onStream(msg);
        }
      },
      close: async () => {},
    };
    return link;
  };

  /** The connection drops: its link fails from now on, and the client is told (it reconnects). */
  drop(cause: Error): void {
    this.current.lost = true;
    this.handlers?.onClose(cause);
  }

  ops(op: string): ClientToSchedulerMsg[] {
    return this.sent.filter((m) => m.op === op);
  }

  private report(msg: SchedulerToClientMsg): void {
    setImmediate(() => this.handlers?.onMessage(msg));
  }

  private onStream(msg: ClientToSchedulerMsg): void {
    switch (msg.op) {
      case 'update-graph':
        for (const t of msg.tasks) if (!this.tasks.has(t.key)) this.tasks.set(t.key, { def: t, state: 'waiting' });
        for (const k of msg.keys) {
          this.wanted.add(k);
          // Like the real scheduler: a wanted key already in memory is reported at once.
          if (this.data.has(k)) this.report({ op: 'key-in-memory', key: k });
        }
        if (this.auto) setImmediate(() => this.run());
        break;
      case 'client-releases-keys':
        for (const k of msg.keys) {
          this.wanted.delete(k);
          this.tasks.delete(k);
          this.data.delete(k);
        }
        break;
      case 'client-desires-keys':
        for (const k of msg.keys) {
          this.wanted.add(k);
          if (this.data.has(k)) this.report({ op: 'key-in-memory', key: k });
        }
        break;
      case 'stream-barrier':
        this.report({ op: 'stream-barrier', id: msg.id });
        break;
      default:
        break;
    }
  }

  /** Runs every runnable task until nothing changes. */
  run(): void {
    for (let progress = true; progress; ) {
      progress = false;
      for (const [key, t] of this.tasks) {
        if (t.state !== 'waiting') continue;
        const deps = t.def.dependencies.map((d) => this.tasks.get(d));
        const erred = deps.find((d) => d?.state === 'erred');
        if (erred !== undefined) {
          t.state = 'erred';
          t.exception = erred.exception;
          this.report({ op: 'task-erred', key, exception: erred.exception! });
          progress = true;
          continue;
        }
        if (!t.def.dependencies.every((d) => this.data.has(d))) continue;
        progress = true;
        this.runs++;
        try {
          const spec = decodeTaskSpec(t.def.spec);
          const args = substituteKeyRefs(spec.args, (k) => this.data.get(k)) as unknown[];
          if (spec.fn.kind !== 'source') throw new Error('fake scheduler runs functions by source only');
          const fn = new Function(`return (${spec.fn.source}\n);`)() as (...a: unknown[]) => unknown;
          const value = fn(...args);
          this.data.set(key, value);
          t.state = 'memory';
          this.report(this.inline && typeof value === 'number' ? { op: 'key-in-memory', key, type: typeof value, value } : { op: 'key-in-memory', key, type: typeof value });
        } catch (err) {
          const e = err as Error;
          t.state = 'erred';
          t.exception = { name: e.name, message: e.message, stack: e.stack };
          this.report({ op: 'task-erred', key, exception: t.exception });
        }
      }
    }
  }

  private onCall(op: string, args: Record<string, unknown>): unknown {
    switch (op) {
      case 'who-has': {
        const keys = (args['keys'] as string[] | undefined) ?? [...this.data.keys()];
        return Object.fromEntries(keys.map((k) => [k, this.data.has(k) ? [WORKER] : []]));
      }
      case 'identity':
        return {
          type: 'Scheduler',
          id: 'fake-scheduler',
          address: 'fake://scheduler',
          started: 0,
          workers: { [WORKER]: { address: WORKER, name: 'w1', host: 'fake', nthreads: 2, memoryLimit: 0, resources: {}, lastSeen: 0 } },
        };
      case 'update-data':
        for (const k of Object.keys(args['whoHas'] as object)) this.wanted.add(k);
        return {};
      case 'cancel':
        for (const k of args['keys'] as string[]) {
          this.tasks.delete(k);
          this.data.delete(k);
        }
        this.report({ op: 'cancelled-keys', keys: args['keys'] as string[] });
        return {};
      case 'gather':
        return { status: 'OK', data: Object.fromEntries((args['keys'] as string[]).filter((k) => this.data.has(k)).map((k) => [k, this.data.get(k)])) };
      case 'retry':
        throw Object.assign(new Error('unknown operation "retry"'), { remoteName: 'UnknownOpError', remoteCode: 'DD_ERR_UNKNOWN_OP' });
      case 'nthreads':
        return { [WORKER]: 2 };
      default:
        return {};
    }
  }

  private onWorkerCall(op: string, args: Record<string, unknown>): unknown {
    switch (op) {
      case 'get-data':
        return { status: 'OK', data: Object.fromEntries((args['keys'] as string[]).filter((k) => this.data.has(k)).map((k) => [k, this.data.get(k)])) };
      case 'update-data': {
        const d = args['data'] as Record<string, unknown>;
        for (const [k, v] of Object.entries(d)) {
          this.data.set(k, v);
          this.tasks.set(k, { def: { key: k, spec: { language: 'none', data: new Uint8Array() }, dependencies: [] }, state: 'memory' });
        }
        return { nbytes: Object.fromEntries(Object.keys(d).map((k) => [k, 8])) };
      }
      default:
        throw new Error(`fake worker: unknown op ${op}`);
    }
  }
}

/** A client connected to a fresh FakeScheduler (the caller closes it). */
export async function connectFake(): Promise<{ client: Client; fake: FakeScheduler }> {
  const fake = new FakeScheduler();
  const client = await Client.connect('fake://scheduler', { link: fake.link, heartbeatIntervalMs: 0 });
  return { client, fake };
}

/** A client connected to a fresh FakeScheduler; closed after `body`, even when it throws. */
export async function withFake(body: (client: Client, fake: FakeScheduler) => Promise<void>): Promise<void> {
  const { client, fake } = await connectFake();
  try {
    await body(client, fake);
  } finally {
    await client.close();
  }
}
