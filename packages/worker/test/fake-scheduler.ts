// A minimal scheduler for shell tests, built on @dd/comm's Server: accepts register-worker,
// keeps each worker's stream, records what workers send, answers heartbeats.

import { NO_REPLY, Server, type Comm, type HandlerContext } from '@dd/comm';
import type { RegisterWorkerRequest, SchedulerToWorkerMsg, WorkerToSchedulerMsg } from '@dd/protocol';

export class FakeScheduler {
  readonly server: Server;
  readonly registrations: RegisterWorkerRequest[] = [];
  readonly received: Array<WorkerToSchedulerMsg & { from: string }> = [];
  readonly heartbeats: Array<{ address: string; metrics: unknown }> = [];
  readonly streams = new Map<string, Comm>();
  heartbeatReply: Record<string, unknown> = { status: 'OK', heartbeatIntervalMs: 100 };
  private waiters: Array<() => void> = [];

  constructor() {
    const record = (msg: WorkerToSchedulerMsg, ctx: HandlerContext) => {
      const from = [...this.streams].find(([, c]) => c === ctx.comm)?.[0] ?? '?';
      this.received.push({ ...msg, from });
      this.notify();
    };
    this.server = new Server({
      name: 'fake-scheduler',
      handlers: {
        'register-worker': async (msg: RegisterWorkerRequest, ctx: HandlerContext) => {
          this.registrations.push(msg);
          this.streams.set(msg.address, ctx.comm);
          await ctx.comm.write({ status: 'OK', result: { schedulerId: 'fake', heartbeatIntervalMs: 100 } });
          this.notify();
          // Hold the handler until the stream ends, so the request loop does not read the stream.
          await ctx.server.handleStream(ctx.comm);
          return NO_REPLY;
        },
        'heartbeat-worker': (msg: { address: string; metrics: unknown }) => {
          this.heartbeats.push({ address: msg.address, metrics: msg.metrics });
          this.notify();
          return this.heartbeatReply;
        },
      },
      streamHandlers: {
        'task-finished': record,
        'task-erred': record,
        'add-keys': record,
        'missing-data': record,
        'release-worker-data': record,
        'keep-alive': () => {},
      },
    });
  }

  static async start(address = 'tcp://127.0.0.1:0'): Promise<FakeScheduler> {
    const s = new FakeScheduler();
    await s.server.listen(address);
    return s;
  }

  get address(): string {
    return this.server.address;
  }

  send(worker: string, ...msgs: SchedulerToWorkerMsg[]): void {
    const comm = this.streams.get(worker);
    if (!comm) throw new Error(`no stream to ${worker}`);
    void comm.write(msgs);
  }

  private notify(): void {
    for (const w of this.waiters.splice(0)) w();
  }

  /** Waits until `pred()` holds (re-checked whenever something arrives), or fails after `ms`. */
  async waitFor<T>(pred: () => T | undefined | false, ms = 5000): Promise<T> {
    const deadline = Date.now() + ms;
    for (;;) {
      const v = pred();
      if (v) return v;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error('timed out waiting in FakeScheduler');
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 50));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  async close(): Promise<void> {
    await this.server.close();
  }
}
