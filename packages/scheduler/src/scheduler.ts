// The Scheduler server: the I/O shell around SchedulerState. It owns a comm Server (rpc handlers
// and the worker/client streams), a ConnectionPool for calling workers, one BatchedSend per
// stream, and the timers (worker TTL, idle timeout). Every incoming message becomes a stimulus;
// the instructions that come back are queued on the destination's BatchedSend.

import { randomUUID } from 'node:crypto';
import { BatchedSend, CommClosedError, ConnectionPool, NO_REPLY, Server, consoleLogger } from '@dd/comm';
import type { BatchedSendOptions, Comm, HandlerContext, Logger } from '@dd/comm';
import type {
  Address,
  GatherReply,
  Key,
  RegisterClientReply,
  RegisterWorkerReply,
  SchedulerIdentity,
  StartStop,
  StoryEntry,
  TaskDefinition,
  WireError,
  WorkerIdentity,
  WorkerMetrics,
} from '@dd/protocol';
import { isInlineValue } from '@dd/protocol';
import { BadMessageError, WorkerExistsError } from './errors';
import type { Instruction, SchedulerEvent, UpdateGraphEvent } from './events';
import { sliceIndependentGraph } from './graph-slices';
import { compileSchedulerOptions } from './scheduler-options';
import type { CompiledSchedulerOptions, SchedulerOptions } from './scheduler-options';
import { SchedulerState } from './scheduler-state';
import { SchedulerObservers, type SchedulerObserver } from './observers';
import { FIRE_AND_FORGET_CLIENT } from './state-types';
import { builtinExtensions, extensionClientStreamHandlers, extensionHandlers, type SchedulerExtension } from './extensions';
import { clusterExtensions, PluginsExtension, type ClusterHost, type SchedulerPlugin } from './extensions/cluster';
import {
  findDependencyCycle,
  isObj,
  num,
  numRecord,
  optNum,
  optStr,
  optStrArray,
  str,
  strArray,
  strArrayRecord,
  taskDefinition,
} from './wire-checks';

type Obj = Record<string, unknown>;

interface Peer {
  comm: Comm;
  bsend: BatchedSend;
}

export class Scheduler {
  readonly id: string;
  readonly options: CompiledSchedulerOptions;
  /** The state machine (read-only use outside the scheduler: tests, dashboard). */
  readonly state: SchedulerState;
  readonly started = Date.now();
  /** Resolves once close() has finished. */
  readonly closed: Promise<void>;
  private readonly logger: Logger;
  private readonly server: Server;
  private readonly pool: ConnectionPool;
  private readonly workerPeers = new Map<Address, Peer>();
  private readonly clientPeers = new Map<string, Peer>();
  private readonly commWorker = new Map<Comm, Address>();
  private readonly commClient = new Map<Comm, string>();
  /** Workers that announced a clean departure (their tasks are not suspicious). */
  private readonly leaving = new Set<Address>();
  /** The nanny (rpc address) of each worker that registered with one. */
  private readonly workerNanny = new Map<Address, Address>();
  /**
   * Restarts workers that have no nanny (LocalCluster sets it for its workers); resolves once
   * their replacements registered. Without it, `restart` leaves such workers running, emptied.
   */
  workerRestarter: ((workers: Address[], timeoutMs: number) => Promise<void>) | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stealTimer: NodeJS.Timeout | undefined;
  private idleSince: number | null = null;
  private closing = false;
  private resolveClosed!: () => void;
  private sidCounter = 0;
  private pending: SchedulerEvent[] = [];
  private drainScheduled = false;
  /** Slices of a large map (graph-slices.ts): the whole submission, and whether this is its last slice. */
  private readonly slices = new WeakMap<SchedulerEvent, { whole: UpdateGraphEvent; last: boolean }>();
  private inprocAddress: string | undefined;
  private readonly observers: SchedulerObservers;
  /** Datasets, metadata, events (extensions/). */
  readonly extensions: readonly SchedulerExtension[];

  /** Create and start listening. */
  static async create(options: SchedulerOptions = {}): Promise<Scheduler> {
    const s = new Scheduler(options);
    try {
      await s.listen();
    } catch (err) {
      await s.close();
      throw err;
    }
    return s;
  }

  /** Alias of create(). */
  static start(options: SchedulerOptions = {}): Promise<Scheduler> {
    return Scheduler.create(options);
  }

  private constructor(options: SchedulerOptions) {
    this.options = compileSchedulerOptions(options);
    this.id = this.options.id ?? `Scheduler-${randomUUID()}`;
    this.logger = this.options.logger ?? consoleLogger('dd-scheduler');
    this.state = new SchedulerState(this.options.state);
    this.observers = new SchedulerObservers(this.logger);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.pool = new ConnectionPool({ connectOptions: this.options.comm });
    const h = <T>(fn: (msg: Obj, ctx: HandlerContext) => T) => (msg: unknown, ctx: HandlerContext) => {
      if (!isObj(msg)) throw new BadMessageError('request must be an object');
      // Answer from a state that includes every stream message already received (all slices
      // of a map included: restart must cancel all of it, who-has must see all of it).
      if (this.pending.length > 0 && !this.closing) {
        try {
          this.handlePending();
        } catch {
          /* logged in run() */
        }
      }
      return fn(msg, ctx);
    };
    const sh = (fn: (msg: Obj, ctx: HandlerContext) => void) => (msg: unknown, ctx: HandlerContext) => {
      if (this.closing) return;
      try {
        if (!isObj(msg)) throw new BadMessageError('stream message must be an object');
        fn(msg, ctx);
      } catch (err) {
        if (err instanceof BadMessageError) this.logger.warn(`rejected stream message from ${ctx.peerAddress}: ${err.message}`);
        else this.logger.error(`stream message ${String((msg as Obj)['op'])} from ${ctx.peerAddress} failed`, err);
      }
    };
    const host = {
      feed: (...events: SchedulerEvent[]) => this.feed(...events),
      sid: (prefix: string) => this.sid(prefix),
      addObserver: (o: SchedulerObserver) => this.addObserver(o),
      logger: this.logger,
      now: () => Date.now(),
    };
    this.extensions = [...builtinExtensions(host), ...clusterExtensions(this.clusterHost(host), this)];
    const extRpc = Object.entries(extensionHandlers(this.extensions)).map(([op, fn]) => [op, h((m) => fn(m))] as const);
    const extStream = Object.entries(extensionClientStreamHandlers(this.extensions)).map(
      ([op, fn]) => [op, sh((m, ctx) => fn(m, this.commClient.get(ctx.comm) ?? ''))] as const,
    );
    this.server = new Server({
      ...this.options.comm,
      name: 'dd-scheduler',
      logger: this.logger,
      handlers: {
        ...Object.fromEntries(extRpc),
        'register-worker': h((m, ctx) => this.registerWorker(m, ctx)),
        'register-client': h((m, ctx) => this.registerClient(m, ctx)),
        'heartbeat-worker': h((m) => this.heartbeatWorker(m)),
        'unregister-worker': h((m) => this.unregisterWorker(m)),
        cancel: h((m) => this.cancelRpc(m)),
        'update-data': h((m) => this.updateDataRpc(m)),
        retry: h((m) => this.retryRpc(m)),
        gather: h((m) => this.gather(strArray(m, 'keys', 'gather'))),
        'who-has': h((m) => this.whoHas(optStrArray(m, 'keys', 'who-has'))),
        'has-what': h((m) => this.hasWhat(optStrArray(m, 'workers', 'has-what'))),
        nbytes: h((m) => this.nbytes(optStrArray(m, 'keys', 'nbytes'))),
        nthreads: h(() => this.nthreads()),
        processing: h((m) => this.processing(optStrArray(m, 'workers', 'processing'))),
        identity: h(() => this.identity()),
        story: h((m) => this.story(strArray(m, 'keys', 'story'))),
        broadcast: h((m) => this.broadcast(m)),
        restart: h((m) => this.restartRpc(m)),
      },
      streamHandlers: {
        ...Object.fromEntries(extStream),
        // worker -> scheduler
        'task-finished': sh((m, ctx) => this.fromWorker(ctx, m, 'task-finished')),
        'task-erred': sh((m, ctx) => this.fromWorker(ctx, m, 'task-erred')),
        'release-worker-data': sh((m, ctx) => this.fromWorker(ctx, m, 'release-worker-data')),
        'missing-data': sh((m, ctx) => this.fromWorker(ctx, m, 'missing-data')),
        'add-keys': sh((m, ctx) => this.fromWorker(ctx, m, 'add-keys')),
        'steal-response': sh((m, ctx) => this.fromWorker(ctx, m, 'steal-response')),
        'worker-status-change': sh((m, ctx) => this.fromWorker(ctx, m, 'worker-status-change')),
        'keep-alive': sh((_m, ctx) => {
          const w = this.commWorker.get(ctx.comm);
          if (w !== undefined) this.enqueue({ kind: 'worker-heartbeat', worker: w, stimulusId: this.sid('keep-alive') });
        }),
        // client -> scheduler
        'update-graph': sh((m, ctx) => this.fromClient(ctx, m, 'update-graph')),
        'client-desires-keys': sh((m, ctx) => this.fromClient(ctx, m, 'client-desires-keys')),
        'client-releases-keys': sh((m, ctx) => this.fromClient(ctx, m, 'client-releases-keys')),
        'heartbeat-client': sh((m, ctx) => this.fromClient(ctx, m, 'heartbeat-client')),
        'close-client': sh((m, ctx) => this.fromClient(ctx, m, 'close-client')),
        'stream-barrier': sh((m, ctx) => this.fromClient(ctx, m, 'stream-barrier')),
      },
    });
  }

  private async listen(): Promise<void> {
    await this.server.listen(this.options.address);
    // Clients in this process (a LocalCluster's) reach the scheduler through memory: loopback TCP
    // cost a write syscall, an encoding and a decoding per message each way, about a quarter of a
    // warm one-task round trip (0.91 -> 0.70 ms, TCP and inproc clients alternating on one cluster).
    if (this.server.address.startsWith('inproc://')) this.inprocAddress = this.server.address;
    else this.inprocAddress = (await this.server.listen('inproc://')).contactAddress;
    const tick = Math.max(10, Math.min(this.options.heartbeatIntervalMs, this.options.workerTtlMs / 4, this.options.idleTimeoutMs ?? Infinity));
    this.timer = setInterval(() => this.periodic(), tick);
    this.timer.unref();
    if (this.options.workStealing) {
      this.stealTimer = setInterval(() => this.balance(), this.options.workStealingIntervalMs);
      this.stealTimer.unref();
    }
    this.logger.info(`Scheduler at: ${this.address}`);
  }

  /** The address workers and clients connect to. */
  get address(): string {
    return this.server.address;
  }

  /**
   * An address of this scheduler that only works inside this process (inproc://): messages are
   * handed over by reference, without encoding or the network. A LocalCluster's clients use it.
   */
  get localAddress(): string {
    if (this.inprocAddress === undefined) throw new CommClosedError('scheduler is not listening');
    return this.inprocAddress;
  }

  /** Stop serving: streams and connections are closed (workers and clients notice and retry or exit). */
  async close(): Promise<void> {
    if (this.closing) return this.closed;
    this.closing = true;
    if (this.timer !== undefined) clearInterval(this.timer);
    if (this.stealTimer !== undefined) clearInterval(this.stealTimer);
    this.observers.close();
    for (const p of [...this.workerPeers.values(), ...this.clientPeers.values()]) p.bsend.abort();
    try {
      await this.server.close();
    } finally {
      await this.pool.close().catch(() => undefined);
      this.resolveClosed();
    }
  }

  /**
   * Adds a scheduler plugin (extensions/plugins.ts): hooks updateGraph, transition, addWorker,
   * removeWorker, addClient, removeClient, close; `start` runs now. A plugin added under a name in
   * use replaces the old one. Resolves to its name. A hook that throws is logged, nothing more.
   */
  async addPlugin(plugin: SchedulerPlugin, options: { name?: string } = {}): Promise<string> {
    return await this.pluginsExtension().add(plugin, options.name);
  }

  removePlugin(name: string): boolean {
    return this.pluginsExtension().remove(name);
  }

  private pluginsExtension(): PluginsExtension {
    return this.extensions.find((e): e is PluginsExtension => e instanceof PluginsExtension)!;
  }

  /** What the cluster-management extensions may do (extensions/cluster-host.ts). */
  private clusterHost(base: Omit<ClusterHost, 'state' | 'id' | 'address' | 'sendWorker' | 'callWorker' | 'closeWorker' | 'closeScheduler'>): ClusterHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const self = this;
    return {
      ...base,
      state: this.state,
      id: this.id,
      get address() {
        return self.address;
      },
      sendWorker: (address, ...msgs) => {
        const peer = this.workerPeers.get(address);
        if (peer === undefined || this.closing) return false;
        try {
          peer.bsend.sendAll(msgs);
          return true;
        } catch {
          return false;
        }
      },
      callWorker: (address, op, args, timeoutMs) =>
        this.pool.call(address, op, args, timeoutMs === undefined ? undefined : { timeout: timeoutMs }),
      closeWorker: (address, reason) => {
        const peer = this.workerPeers.get(address);
        if (peer === undefined) return;
        this.leaving.add(address);
        try {
          peer.bsend.send({ op: 'close', reason });
        } catch {
          // its stream is closing already
        }
      },
      closeScheduler: () => {
        // After the current rpc's reply is written.
        setImmediate(() => void this.close());
      },
    };
  }

  // -------------------------------------------------------------------------------------------
  // Feeding the state machine and carrying out its instructions

  private sid(prefix: string): string {
    return `${prefix}-${Date.now()}-${++this.sidCounter}`;
  }

  /**
   * Queue a stream event: events arriving in the same tick (one wire batch is many messages) are
   * handled by one handleStimulus call, so validation and instruction flushing happen per batch.
   */
  private enqueue(ev: SchedulerEvent): void {
    this.pending.push(ev);
    if (!this.drainScheduled) {
      this.drainScheduled = true;
      queueMicrotask(this.drain);
    }
  }

  private readonly drain = (): void => {
    this.drainScheduled = false;
    if (this.pending.length === 0 || this.closing) {
      this.pending = [];
      return;
    }
    let events = this.pending;
    this.pending = [];
    // After a slice of a large map, the rest waits for the next turn of the event loop, so the
    // slice's compute-task messages are written (at once with the default batchIntervalMs of 0)
    // and the workers start on them. Events stay in arrival order.
    const cut = this.sliceEnd(events);
    if (cut < events.length) {
      this.pending = events.slice(cut);
      events = events.slice(0, cut);
      this.drainScheduled = true;
      setImmediate(this.drain);
    }
    try {
      this.run(events);
    } catch {
      /* logged in run() */
    }
  };

  /** Events up to and including the first slice of a map that is not its last (or all). */
  private sliceEnd(events: SchedulerEvent[]): number {
    for (let i = 0; i < events.length - 1; i++) {
      const ev = events[i]!;
      if (ev.kind === 'update-graph' && this.slices.get(ev)?.last === false) return i + 1;
    }
    return events.length;
  }

  /** Feed events now (after anything queued, to keep order); send the resulting messages. */
  private feed(...events: SchedulerEvent[]): void {
    this.handlePending();
    this.run(events);
  }

  /** Handles everything queued, at once: the rest of a sliced map too (a drain scheduled later finds nothing). */
  private handlePending(): void {
    if (this.pending.length === 0) return;
    const queued = this.pending;
    this.pending = [];
    this.run(queued);
  }

  private run(events: SchedulerEvent[]): void {
    let out: Instruction[];
    try {
      out = this.state.handleEvents(events);
    } catch (err) {
      this.logger.error(`handling ${events.map((e) => e.kind).join(', ')} failed`, err);
      throw err;
    }
    this.dispatch(out);
    if (this.observers.size > 0) this.observers.stimuli(this.observed(events));
    if (this.state.deferredReleaseCount > 0 && !this.releaseScheduled) {
      // A timer, not setImmediate: with the default batchIntervalMs of 0 the BatchedSends flush
      // on zero-delay timers set while this stimulus was dispatched, and timers of one delay fire
      // in order, so the finished task's report is written before the releases are handled.
      // (With a longer interval, or a write to that client still in flight, it goes out after
      // them, as it did before releases were deferred.)
      this.releaseScheduled = true;
      setTimeout(this.releaseDeferred, 0);
    }
  }

  private releaseScheduled = false;
  private readonly releaseDeferred = (): void => {
    this.releaseScheduled = false;
    if (!this.closing) this.enqueue({ kind: 'release-deferred', stimulusId: this.sid('release-deferred') });
  };

  /** Observers and plugins see a sliced map once, whole, when its last slice is in the state. */
  private observed(events: SchedulerEvent[]): SchedulerEvent[] {
    let out: SchedulerEvent[] | undefined;
    for (let i = 0; i < events.length; i++) {
      const ev = events[i]!;
      const slice = ev.kind === 'update-graph' ? this.slices.get(ev) : undefined;
      if (slice === undefined) {
        out?.push(ev);
        continue;
      }
      out ??= events.slice(0, i);
      if (slice.last) out.push(slice.whole);
    }
    return out ?? events;
  }

  /** Register a read-only observer of handled stimuli (see observers.ts); returns its remover. */
  addObserver(observer: SchedulerObserver): () => void {
    return this.observers.add(observer);
  }

  private dispatch(instructions: Instruction[]): void {
    for (const ins of instructions) {
      const peer = ins.type === 'send-worker' ? this.workerPeers.get(ins.worker) : this.clientPeers.get(ins.client);
      if (peer === undefined) continue;
      try {
        peer.bsend.sendAll(ins.msgs);
      } catch (err) {
        if (!(err instanceof CommClosedError)) throw err;
        // The stream's close handler removes the peer.
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Workers

  private async registerWorker(m: Obj, ctx: HandlerContext): Promise<unknown> {
    const op = 'register-worker';
    const address = str(m, 'address', op);
    const nthreads = num(m, 'nthreads', op);
    if (nthreads < 1) throw new BadMessageError(`${op}: nthreads must be >= 1`);
    const memoryLimit = optNum(m, 'memoryLimit', op) ?? 0;
    const name = optStr(m, 'name', op) ?? address;
    const host = optStr(m, 'host', op) ?? hostOf(address);
    const resources = numRecord(m, 'resources', op, true);
    const nbytes = numRecord(m, 'nbytes', op, true);
    if (this.closing) throw new CommClosedError('scheduler is closing');
    if (this.state.workers.has(address)) throw new WorkerExistsError(`worker ${address} is already registered`);
    for (const ws of this.state.workers.values()) {
      if (ws.name === name) throw new WorkerExistsError(`a worker named ${JSON.stringify(name)} is already registered (${ws.address})`);
    }
    const comm = ctx.comm;
    const bsend = new BatchedSend(streamOptions(this.options.batchIntervalMs, `to-worker ${address}`));
    this.workerPeers.set(address, { comm, bsend });
    this.commWorker.set(comm, address);
    const ev: SchedulerEvent = {
      kind: 'add-worker',
      address,
      name,
      host,
      nthreads,
      memoryLimit,
      resources,
      nbytes,
      stimulusId: this.sid('add-worker'),
    };
    const localDirectory = optStr(m, 'localDirectory', op);
    if (localDirectory !== undefined) ev.localDirectory = localDirectory;
    const pid = optNum(m, 'pid', op);
    if (pid !== undefined) ev.pid = pid;
    if (m['services'] !== undefined && m['services'] !== null) ev.services = numRecord(m, 'services', op);
    const nanny = optStr(m, 'nanny', op);
    if (nanny !== undefined) this.workerNanny.set(address, nanny);
    // Register first (compute-task messages queue on the not-yet-started BatchedSend), then reply,
    // then start the stream: the worker reads the reply before any batch.
    this.feed(ev);
    // Worker plugins and uploads, taken in the same step as the worker joined the state (see
    // PluginsExtension.workerPluginEntries); the worker installs them before it reads the stream.
    const plugins = this.pluginsExtension().workerPluginEntries();
    const reply: RegisterWorkerReply = { schedulerId: this.id, heartbeatIntervalMs: this.options.heartbeatIntervalMs };
    if (plugins.length > 0) reply.plugins = plugins;
    try {
      await comm.write({ status: 'OK', result: reply });
    } catch {
      this.dropWorker(address, comm, false);
      return NO_REPLY;
    }
    bsend.start(comm);
    this.logger.info(`register worker ${address} (${name}, ${nthreads} threads)`);
    await this.server.handleStream(comm, { onClose: () => this.dropWorker(address, comm, false) });
    return NO_REPLY;
  }

  /** Forget a worker whose stream ended (or that timed out / unregistered). */
  private dropWorker(address: Address, comm: Comm, timedOut: boolean): void {
    const peer = this.workerPeers.get(address);
    if (peer === undefined || peer.comm !== comm) return;
    this.workerPeers.delete(address);
    this.commWorker.delete(comm);
    this.workerNanny.delete(address);
    peer.bsend.abort();
    comm.abort();
    const safe = this.leaving.delete(address);
    if (this.closing) return;
    this.logger.info(`remove worker ${address}${timedOut ? ' (heartbeat timeout)' : ''}${safe ? ' (clean)' : ''}`);
    this.feed({ kind: 'remove-worker', address, safe, stimulusId: this.sid('remove-worker') });
  }

  private heartbeatWorker(m: Obj): unknown {
    const address = str(m, 'address', 'heartbeat-worker');
    if (!this.state.workers.has(address)) return { status: 'missing' };
    const ev: SchedulerEvent = { kind: 'worker-heartbeat', worker: address, stimulusId: this.sid('heartbeat') };
    const metrics = m['metrics'];
    if (isObj(metrics)) ev.metrics = metrics as unknown as WorkerMetrics;
    const now = optNum(m, 'now', 'heartbeat-worker');
    if (now !== undefined) ev.now = now;
    this.feed(ev);
    return { status: 'OK', heartbeatIntervalMs: this.options.heartbeatIntervalMs };
  }

  /** Local extension: a worker leaving on purpose (`safe`: its tasks are not suspicious). */
  private unregisterWorker(m: Obj): unknown {
    const address = str(m, 'address', 'unregister-worker');
    const peer = this.workerPeers.get(address);
    if (peer === undefined) return { status: 'missing' };
    if (m['safe'] !== false) this.leaving.add(address);
    this.dropWorker(address, peer.comm, false);
    return { status: 'OK' };
  }

  private fromWorker(ctx: HandlerContext, m: Obj, op: string): void {
    const worker = this.commWorker.get(ctx.comm);
    if (worker === undefined) throw new BadMessageError(`${op} on a stream that is not a registered worker's`);
    const stimulusId = optStr(m, 'stimulusId', op) ?? this.sid(op);
    switch (op) {
      case 'task-finished': {
        const ev: SchedulerEvent = { kind: 'task-finished', worker, key: str(m, 'key', op), nbytes: optNum(m, 'nbytes', op) ?? -1, stimulusId };
        const type = optStr(m, 'type', op);
        if (type !== undefined) ev.type = type;
        if (Array.isArray(m['startstops'])) ev.startstops = m['startstops'] as StartStop[];
        const value = m['value'];
        if (value !== undefined && isInlineValue(value)) ev.value = value;
        this.enqueue(ev);
        return;
      }
      case 'task-erred': {
        const key = str(m, 'key', op);
        const ex = m['exception'];
        const exception: WireError = isObj(ex) && typeof ex['message'] === 'string'
          ? (ex as unknown as WireError)
          : { name: 'Error', message: `task ${key} failed (worker sent no exception)` };
        const ev: SchedulerEvent = { kind: 'task-erred', worker, key, exception, stimulusId };
        if (Array.isArray(m['startstops'])) ev.startstops = m['startstops'] as StartStop[];
        this.enqueue(ev);
        return;
      }
      case 'release-worker-data': {
        const keys = Array.isArray(m['keys']) ? strArray(m, 'keys', op) : [str(m, 'key', op)];
        this.enqueue({ kind: 'release-worker-data', worker, keys, stimulusId });
        return;
      }
      case 'missing-data':
        this.enqueue({ kind: 'missing-data', key: str(m, 'key', op), errantWorker: str(m, 'errantWorker', op), stimulusId });
        return;
      case 'add-keys':
        this.enqueue({ kind: 'add-keys', worker, keys: strArray(m, 'keys', op), nbytes: numRecord(m, 'nbytes', op, true), stimulusId });
        return;
      case 'steal-response': {
        const state = m['state'];
        if (state !== null && typeof state !== 'string') throw new BadMessageError(`${op}: state must be a string or null`);
        this.enqueue({ kind: 'steal-response', worker, key: str(m, 'key', op), state, stimulusId });
        return;
      }
      case 'worker-status-change': {
        // Memory pressure: a paused worker gets no new tasks until it runs again.
        const status = str(m, 'status', op);
        if (status !== 'paused' && status !== 'running') throw new BadMessageError(`${op}: unknown status ${JSON.stringify(status)}`);
        this.enqueue({ kind: status === 'paused' ? 'worker-paused' : 'worker-resumed', worker, stimulusId });
        return;
      }
    }
  }

  // -------------------------------------------------------------------------------------------
  // Clients

  private async registerClient(m: Obj, ctx: HandlerContext): Promise<unknown> {
    const client = str(m, 'client', 'register-client');
    if (client === FIRE_AND_FORGET_CLIENT) throw new BadMessageError(`client id ${client} is reserved`);
    if (this.closing) throw new CommClosedError('scheduler is closing');
    const comm = ctx.comm;
    const old = this.clientPeers.get(client);
    if (old !== undefined) {
      // Same id again (a reconnect): the new stream replaces the old one.
      this.commClient.delete(old.comm);
      old.bsend.abort();
      old.comm.abort();
    }
    const bsend = new BatchedSend(streamOptions(this.options.batchIntervalMs, `to-client ${client}`));
    this.clientPeers.set(client, { comm, bsend });
    this.commClient.set(comm, client);
    this.feed({ kind: 'add-client', client, stimulusId: this.sid('add-client') });
    const reply: RegisterClientReply = { schedulerId: this.id, address: this.address };
    try {
      await comm.write({ status: 'OK', result: reply });
    } catch {
      this.dropClient(client, comm);
      return NO_REPLY;
    }
    bsend.start(comm);
    this.logger.info(`register client ${client}`);
    await this.server.handleStream(comm, { onClose: () => this.dropClient(client, comm) });
    return NO_REPLY;
  }

  private dropClient(client: string, comm: Comm): void {
    const peer = this.clientPeers.get(client);
    if (peer === undefined || peer.comm !== comm) return;
    this.clientPeers.delete(client);
    this.commClient.delete(comm);
    peer.bsend.abort();
    comm.abort();
    if (this.closing) return;
    this.logger.info(`remove client ${client}`);
    this.feed({ kind: 'remove-client', client, stimulusId: this.sid('remove-client') });
  }

  private fromClient(ctx: HandlerContext, m: Obj, op: string): void {
    const client = this.commClient.get(ctx.comm);
    if (client === undefined) throw new BadMessageError(`${op} on a stream that is not a registered client's`);
    const stimulusId = optStr(m, 'stimulusId', op) ?? this.sid(op);
    switch (op) {
      case 'update-graph': {
        const keys = strArray(m, 'keys', op);
        let tasks: TaskDefinition[];
        let userPriority: number | undefined;
        let fifoTimeoutMs: number | undefined;
        try {
          if (!Array.isArray(m['tasks'])) throw new BadMessageError(`${op}: field "tasks" must be an array`);
          tasks = (m['tasks'] as unknown[]).map((t, i) => taskDefinition(t, i));
          userPriority = optNum(m, 'userPriority', op);
          fifoTimeoutMs = optNum(m, 'fifoTimeoutMs', op);
          const cycle = findDependencyCycle(tasks);
          if (cycle !== undefined) {
            const shown = cycle.length > 6 ? [...cycle.slice(0, 3), '...', ...cycle.slice(-2)] : cycle;
            throw new BadMessageError(`${op}: the tasks' dependencies form a cycle (${cycle.length - 1} tasks): ${shown.join(' -> ')}`);
          }
        } catch (err) {
          // Tell the client its futures will not complete.
          this.dispatch([{ type: 'send-client', client, msgs: [{ op: 'cancelled-keys', keys, reason: (err as Error).message }] }]);
          throw err;
        }
        const ev: UpdateGraphEvent = { kind: 'update-graph', client, tasks, keys, stimulusId };
        if (userPriority !== undefined) ev.userPriority = userPriority;
        if (fifoTimeoutMs !== undefined) ev.fifoTimeoutMs = fifoTimeoutMs;
        const slices = sliceIndependentGraph(ev);
        for (let i = 0; i < slices.length; i++) {
          const slice = slices[i]!;
          if (slices.length > 1) this.slices.set(slice, { whole: ev, last: i === slices.length - 1 });
          this.enqueue(slice);
        }
        return;
      }
      case 'client-desires-keys':
        this.enqueue({ kind: 'client-desires-keys', client: optStr(m, 'client', op) ?? client, keys: strArray(m, 'keys', op), stimulusId });
        return;
      case 'client-releases-keys':
        this.enqueue({ kind: 'client-releases-keys', client: optStr(m, 'client', op) ?? client, keys: strArray(m, 'keys', op), stimulusId });
        return;
      case 'heartbeat-client':
        this.enqueue({ kind: 'client-heartbeat', client, stimulusId });
        return;
      case 'stream-barrier':
        // Everything the client sent before it has been read and queued: the rpcs it sends after
        // this answer handle that queue first (see the request wrapper in the constructor).
        this.clientPeers.get(client)?.bsend.send({ op: 'stream-barrier', id: num(m, 'id', op) });
        return;
      case 'close-client': {
        const peer = this.clientPeers.get(client);
        if (peer !== undefined) {
          // Flush what is queued, then close; the stream's end removes the client.
          void peer.bsend.close().finally(() => this.dropClient(client, peer.comm));
        }
        return;
      }
    }
  }

  /**
   * client.restart(): every client's keys are cancelled (with the reason) and released, then each
   * worker's nanny (or `workerRestarter`) starts a fresh process; replies once they registered.
   */
  private async restartRpc(m: Obj): Promise<{ status: 'OK'; workers: Address[]; notRestarted: Address[] }> {
    const op = 'restart';
    const timeoutMs = optNum(m, 'timeoutMs', op) ?? 60_000;
    const reason = optStr(m, 'reason', op) ?? 'the cluster was restarted (client.restart()); its tasks and data are gone';
    this.logger.info(`restart: releasing ${this.state.tasks.size} tasks, restarting ${this.state.workers.size} workers`);
    const sid = this.sid(op);
    const events: SchedulerEvent[] = [];
    for (const cs of this.state.clients.values()) {
      const keys = [...cs.wantsWhat].map((ts) => ts.key);
      if (keys.length === 0) continue;
      if (cs.id !== FIRE_AND_FORGET_CLIENT) this.dispatch([{ type: 'send-client', client: cs.id, msgs: [{ op: 'cancelled-keys', keys, reason }] }]);
      events.push({ kind: 'client-releases-keys', client: cs.id, keys, stimulusId: sid });
    }
    if (events.length > 0) this.feed(...events);
    const byNanny = new Map<Address, Address[]>();
    const orphans: Address[] = [];
    for (const address of this.state.workers.keys()) {
      const nanny = this.workerNanny.get(address);
      if (nanny === undefined) orphans.push(address);
      else byNanny.set(nanny, [...(byNanny.get(nanny) ?? []), address]);
    }
    const workers: Address[] = [];
    const failures: string[] = [];
    const restarter = this.workerRestarter;
    await Promise.all([
      ...[...byNanny].map(async ([nanny, addresses]) => {
        try {
          const reply = await this.pool.rpc(nanny).call<{ workers?: Address[] }>('restart', { workers: addresses, timeoutMs }, { timeout: timeoutMs + 5000 });
          workers.push(...(reply?.workers ?? []));
        } catch (err) {
          failures.push(`nanny ${nanny} (workers ${addresses.join(', ')}): ${(err as Error).message}`);
        }
      }),
      (async () => {
        if (restarter === undefined || orphans.length === 0) return;
        try {
          await restarter(orphans, timeoutMs);
        } catch (err) {
          failures.push(`workers ${orphans.join(', ')}: ${(err as Error).message}`);
        }
      })(),
    ]);
    if (failures.length > 0) throw new Error(`restart: could not restart ${failures.join('; ')}`);
    const notRestarted = restarter === undefined ? orphans : [];
    if (notRestarted.length > 0) this.logger.warn(`restart: workers without a nanny kept running (emptied): ${notRestarted.join(', ')}`);
    return { status: 'OK', workers: restarter === undefined ? workers : [...this.state.workers.keys()], notRestarted };
  }

  private cancelRpc(m: Obj): null {
    const ev: SchedulerEvent = { kind: 'cancel', client: str(m, 'client', 'cancel'), keys: strArray(m, 'keys', 'cancel'), stimulusId: this.sid('cancel') };
    if (m['force'] === true) ev.force = true;
    this.feed(ev);
    return null;
  }

  private updateDataRpc(m: Obj): { keys: Key[] } {
    const op = 'update-data';
    const client = str(m, 'client', op);
    const whoHas = strArrayRecord(m, 'whoHas', op);
    const nbytes = numRecord(m, 'nbytes', op, true);
    this.feed({ kind: 'update-data', client, whoHas, nbytes, stimulusId: optStr(m, 'stimulusId', op) ?? this.sid(op) });
    const keys = Object.keys(whoHas).filter((k) => this.state.tasks.get(k)?.state === 'memory');
    return { keys };
  }

  private retryRpc(m: Obj): null {
    const ev: SchedulerEvent = { kind: 'retry', keys: strArray(m, 'keys', 'retry'), stimulusId: this.sid('retry') };
    const client = optStr(m, 'client', 'retry');
    if (client !== undefined) ev.client = client;
    this.feed(ev);
    return null;
  }

  // -------------------------------------------------------------------------------------------
  // Queries

  private whoHas(keys: Key[] | undefined): Record<Key, Address[]> {
    const out: Record<Key, Address[]> = {};
    if (keys === undefined) {
      for (const ts of this.state.tasks.values()) if (ts.whoHas.size > 0) out[ts.key] = [...ts.whoHas].map((w) => w.address);
    } else {
      for (const k of keys) {
        const ts = this.state.tasks.get(k);
        out[k] = ts === undefined ? [] : [...ts.whoHas].map((w) => w.address);
      }
    }
    return out;
  }

  private hasWhat(workers: Address[] | undefined): Record<Address, Key[]> {
    const out: Record<Address, Key[]> = {};
    for (const a of workers ?? this.state.workers.keys()) {
      const ws = this.state.workers.get(a);
      out[a] = ws === undefined ? [] : [...ws.hasWhat].map((t) => t.key);
    }
    return out;
  }

  private nbytes(keys: Key[] | undefined): Record<Key, number> {
    const out: Record<Key, number> = {};
    const tasks = keys === undefined ? this.state.tasks.values() : keys.map((k) => this.state.tasks.get(k));
    for (const ts of tasks) if (ts !== undefined && ts.nbytes >= 0) out[ts.key] = ts.nbytes;
    return out;
  }

  private nthreads(): Record<Address, number> {
    const out: Record<Address, number> = {};
    for (const ws of this.state.workers.values()) out[ws.address] = ws.nthreads;
    return out;
  }

  private processing(workers: Address[] | undefined): Record<Address, Key[]> {
    const out: Record<Address, Key[]> = {};
    for (const a of workers ?? this.state.workers.keys()) {
      const ws = this.state.workers.get(a);
      out[a] = ws === undefined ? [] : [...ws.processing.keys()].map((t) => t.key);
    }
    return out;
  }

  /** `identity` reply: the scheduler and its workers. */
  identity(): SchedulerIdentity {
    const workers: Record<Address, WorkerIdentity> = {};
    for (const ws of this.state.workers.values()) {
      const w: WorkerIdentity = {
        address: ws.address,
        name: ws.name,
        host: ws.host,
        nthreads: ws.nthreads,
        memoryLimit: ws.memoryLimit,
        resources: { ...ws.resources },
        lastSeen: ws.lastSeen,
      };
      if (ws.localDirectory !== undefined) w.localDirectory = ws.localDirectory;
      if (ws.pid !== undefined) w.pid = ws.pid;
      if (ws.services !== undefined) w.services = { ...ws.services };
      if (ws.metrics !== null) w.metrics = ws.metrics;
      workers[ws.address] = w;
    }
    return { type: 'Scheduler', id: this.id, address: this.address, started: this.started, workers };
  }

  private story(keys: Key[]): StoryEntry[] {
    return this.state.story(...keys);
  }

  /** Fetch keys from the workers holding them (the fallback gather path). */
  async gather(keys: Key[]): Promise<GatherReply> {
    const data: Record<Key, unknown> = {};
    // Held but impossible to send (GetDataReply.unsendable): not missing, not worth another holder.
    let unsendable: Record<Key, WireError> | undefined;
    const tried = new Map<Key, Set<Address>>();
    let remaining = [...new Set(keys)];
    for (let round = 0; round < 3 && remaining.length > 0; round++) {
      const byWorker = new Map<Address, Key[]>();
      const missing: Key[] = [];
      for (const key of remaining) {
        const ts = this.state.tasks.get(key);
        const seen = tried.get(key) ?? new Set<Address>();
        tried.set(key, seen);
        let pick: Address | undefined;
        if (ts !== undefined && ts.state === 'memory') {
          for (const ws of ts.whoHas) {
            if (!seen.has(ws.address)) {
              pick = ws.address;
              break;
            }
          }
        }
        if (pick === undefined) missing.push(key);
        else {
          seen.add(pick);
          const list = byWorker.get(pick);
          if (list === undefined) byWorker.set(pick, [key]);
          else list.push(key);
        }
      }
      if (missing.length > 0) return { status: 'missing', keys: missing };
      const next: Key[] = [];
      await Promise.all(
        [...byWorker].map(async ([worker, wkeys]) => {
          try {
            const reply = await this.pool.call<{ status: string; data?: Record<Key, unknown>; unsendable?: Record<Key, WireError> }>(
              worker,
              'get-data',
              { keys: wkeys },
              { timeout: this.options.rpcTimeoutMs },
            );
            const got = reply?.status === 'OK' && isObj(reply.data) ? reply.data : undefined;
            const cannot = reply?.status === 'OK' && isObj(reply.unsendable) ? reply.unsendable : undefined;
            for (const k of wkeys) {
              if (got !== undefined && k in got) data[k] = got[k];
              else if (cannot !== undefined && k in cannot) (unsendable ??= {})[k] = cannot[k]!;
              else {
                next.push(k);
                if (got !== undefined && !this.closing) {
                  // The worker answered but lacks the key: correct who_has.
                  this.feed({ kind: 'missing-data', key: k, errantWorker: worker, stimulusId: this.sid('gather-missing') });
                }
              }
            }
          } catch (err) {
            this.logger.warn(`gather: get-data from ${worker} failed: ${(err as Error).message}`);
            for (const k of wkeys) next.push(k); // not push(...): there may be 100 000s
          }
        }),
      );
      remaining = next;
    }
    const extra = unsendable !== undefined ? { unsendable } : {};
    if (remaining.length > 0) return { status: 'missing', keys: remaining, ...extra };
    return { status: 'OK', data, ...extra };
  }

  /** Forward an rpc to workers and collect replies (`onError`: 'raise' default, 'return', 'ignore'). */
  private async broadcast(m: Obj): Promise<Record<Address, unknown>> {
    const msg = m['msg'];
    if (!isObj(msg) || typeof msg['op'] !== 'string') throw new BadMessageError('broadcast: field "msg" must be {op, ...}');
    const workers = optStrArray(m, 'workers', 'broadcast') ?? [...this.state.workers.keys()];
    const onError = m['onError'] ?? 'raise';
    const { op, ...args } = msg as { op: string } & Obj;
    const out: Record<Address, unknown> = {};
    await Promise.all(
      workers.map(async (w) => {
        try {
          out[w] = await this.pool.call(w, op, args, { timeout: this.options.rpcTimeoutMs });
        } catch (err) {
          if (onError === 'raise') throw err;
          if (onError === 'return') {
            const e = err as Error & { code?: string; remoteName?: string; remoteMessage?: string; remoteStack?: string };
            out[w] = { name: e.remoteName ?? e.name, message: e.remoteMessage ?? e.message, stack: e.remoteStack ?? e.stack, code: e.code };
          }
        }
      }),
    );
    return out;
  }

  // -------------------------------------------------------------------------------------------
  // Timers

  /** Work stealing's tick: only when some worker idles while another has tasks queued. */
  private balance(): void {
    if (this.closing || this.state.idle.size === 0 || this.state.idle.size === this.state.running.size) return;
    this.enqueue({ kind: 'balance', stimulusId: this.sid('balance') });
  }

  private periodic(): void {
    if (this.closing) return;
    const now = Date.now();
    for (const ws of [...this.state.workers.values()]) {
      if (now - ws.lastSeen > this.options.workerTtlMs) {
        this.logger.warn(`worker ${ws.address} missed heartbeats for ${now - ws.lastSeen} ms; removing it`);
        const peer = this.workerPeers.get(ws.address);
        if (peer !== undefined) this.dropWorker(ws.address, peer.comm, true);
        else this.feed({ kind: 'remove-worker', address: ws.address, stimulusId: this.sid('worker-ttl') });
      }
    }
    const idleTimeout = this.options.idleTimeoutMs;
    if (idleTimeout !== null) {
      let busy = this.clientPeers.size > 0 || this.state.unrunnable.size > 0;
      if (!busy) for (const ws of this.state.workers.values()) if (ws.processing.size > 0) busy = true;
      if (busy) this.idleSince = null;
      else {
        this.idleSince ??= now;
        if (now - this.idleSince > idleTimeout) {
          // A warning, so that an operator who set the timeout sees why the scheduler went away.
          this.logger.warn(`scheduler idle for ${now - this.idleSince} ms (no clients, no tasks; idle timeout ${idleTimeout} ms); closing`);
          void this.close();
        }
      }
    }
  }
}

/**
 * BatchedSend options for a stream. Interval 0 means "write when idle": a batch limit of one
 * message makes send() write at once unless a write is in flight, and what queues meanwhile
 * goes out as one batch when that write completes. (dispatch() hands each destination all of
 * one stimulus's messages in one send() call, so they share a write.)
 */
function streamOptions(intervalMs: number, name: string): BatchedSendOptions {
  return intervalMs > 0 ? { intervalMs, name } : { intervalMs: 1, maxBatchMessages: 1, name };
}

function hostOf(address: string): string {
  const m = /^[a-z]+:\/\/(\[[^\]]+\]|[^:/]+)/i.exec(address);
  return m?.[1] ?? address;
}
