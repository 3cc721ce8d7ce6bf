// Worker: the I/O shell around WorkerState. It owns the comm server (get-data, update-data,
// delete-data, identity, close), the scheduler stream, the connection pool to peers, the
// executor and the timers. Scheduler messages and the outcome of every async job (task runs,
// peer fetches, backoff timers) become events for WorkerState; the instructions it returns
// become executor runs, `get-data` calls and stream messages. Nothing here changes task state
// directly.

import * as fs from 'node:fs';
import * as path from 'node:path';
import {
  BatchedSend,
  CommClosedError,
  ConnectionPool,
  NO_REPLY,
  Server,
  TimeoutError,
  connect,
  getAddressHost,
  parseListenAddress,
  type Comm,
  type HandlerContext,
} from '@dd/comm';
import type {
  DeleteDataRequest,
  GetDataRequest,
  Key,
  RegisterWorkerReply,
  RegisterWorkerRequest,
  SchedulerToWorkerMsg,
  WorkerIdentity,
  WorkerMetrics,
  WorkerToSchedulerMsg,
  WireError,
  WorkerUpdateDataRequest,
} from '@dd/protocol';
import { SerializationError, checkTaskDependencies, encodeMessage, formatBytes, setSharedReassembly } from '@dd/protocol';
import { MemoryStore, type DataStore } from './data-store';
import type { Instruction, WorkerEvent } from './events';
import { createExecutor, type Executor } from './executor';
import { GarbageDebt, garbageDebtSettings } from './garbage';
import { createLocalDirectory, prepareLocalDirectory } from './local-directory';
import { MemoryMonitor } from './memory-monitor';
import { SpillStore } from './spill-store';
import { WorkerHttpServer } from './http-server';
import { wireError } from './task-runner';
import { TransferStats } from './transfer-stats';
import { compileWorkerOptions, type CompiledWorkerOptions, type WorkerOptions } from './worker-options';
import { WorkerRun } from './run';
import { WorkerPlugins } from './plugins';
import { runPreloads } from './preload';
import { checkEventMessage, checkEventTopic, taskWorkerHandle } from './task-context';
import { WorkerState } from './worker-state';

export type { WorkerOptions } from './worker-options';

const VERSIONS = { dd: '0.1.0', node: process.versions.node };

/** Rpc of the scheduler for a clean departure (local type: not in @dd/protocol's messages.ts). */
interface UnregisterWorkerRequest {
  address: string;
  safe: boolean;
}

export type WorkerStatus = 'starting' | 'running' | 'reconnecting' | 'closing' | 'closed';

export class Worker {
  readonly options: CompiledWorkerOptions;
  readonly state: WorkerState;
  readonly data: DataStore;
  /** Resolves once the worker has closed (by close(), the scheduler, or the death timeout). */
  readonly closed: Promise<void>;
  status: WorkerStatus = 'starting';
  /** Set once registered with the scheduler (the scheduler's id). */
  schedulerId: string | undefined;
  /** Totals of peer transfers (read by /metrics). */
  readonly transfers = new TransferStats();
  /** The HTTP endpoints (/health, /metrics, /status), when `dashboardAddress` is set. */
  http: WorkerHttpServer | undefined;

  private readonly server: Server;
  private readonly pool: ConnectionPool;
  /** The data store when it spills (memoryLimit > 0), and the process memory watch. */
  private readonly spill: SpillStore | undefined;
  private readonly memoryMonitor: MemoryMonitor;
  /** Aborted by close(): connection attempts to the scheduler stop retrying. */
  private readonly closeAbort = new AbortController();
  /** When to collect garbage (with a memory limit), for this thread and the executor threads. */
  private readonly garbageSettings: { everyBytes: number; aboveBytes: number } | undefined;
  private executor: Executor | undefined;
  private stream: Comm | undefined;
  private batched: BatchedSend | undefined;
  private heartbeatTimer: NodeJS.Timeout | undefined;
  private heartbeatIntervalMs: number;
  private readonly timers = new Set<NodeJS.Timeout>();
  private readonly sleepers = new Set<() => void>();
  private readonly busyCounts = new Map<string, number>();
  private outgoing = 0;
  private outcomes: WorkerEvent[] = [];
  private outcomesScheduled = false;
  private closePromise: Promise<void> | undefined;
  /** The start-up step running now (startStep); close() lets it finish before tearing down. */
  private runningStep: Promise<unknown> | undefined;
  private resolveClosed!: () => void;
  private ownsLocalDirectory = false;
  private localDirectory = '';
  private addressValue = '';
  private nameValue = '';
  private stimulusCounter = 0;
  /** When the current (re)connection attempt gives up. */
  private deadline = Infinity;
  private lastCpu = process.cpuUsage();
  private lastCpuTime = Date.now();
  private readonly registeredListeners: Array<() => void> = [];
  /** `run` and `versions` rpcs (run.ts). */
  /** ddTeardown hooks of the preload modules, run at close. */
  private preloadTeardowns: Array<{ specifier: string; teardown: (worker: object) => unknown }> = [];
  private readonly runner = new WorkerRun({ worker: this, cwd: () => this.options.cwd, uploadDirectory: () => this.uploadDirectory });
  /** Worker plugins and uploaded files (plugins.ts, uploads.ts). */
  readonly plugins = new WorkerPlugins({
    worker: this,
    runner: () => this.runner.taskRunner(),
    uploadDirectory: () => this.uploadDirectory,
    setTransitionHook: (hook) => {
      if (this.state !== undefined) this.state.transitionHook = hook;
    },
    logger: { warn: (m: string, ...r: unknown[]) => this.options.logger.warn(m, ...r) },
  });

  private constructor(options: CompiledWorkerOptions) {
    this.options = options;
    this.heartbeatIntervalMs = options.heartbeatIntervalMs;
    const { memoryLimit, memory } = options;
    // Under a memory limit, buffers the worker lets go of are collected before they add up (garbage.ts).
    this.garbageSettings = garbageDebtSettings(memoryLimit, memory.target, memory.spill);
    const garbage = this.garbageSettings && new GarbageDebt({ ...this.garbageSettings, processMemory: memory.processMemory });
    if (memoryLimit > 0 && (memory.target !== false || memory.spill !== false)) {
      this.spill = new SpillStore({
        directory: () => path.join(this.localDirectory, 'storage'),
        targetBytes: memory.target === false ? Infinity : memory.target * memoryLimit,
        logger: options.logger,
        sharedMemory: options.executor === 'threads',
        ...(garbage !== undefined ? { onRelease: (bytes: number) => garbage.add(bytes) } : {}),
      });
    }
    this.data = this.spill ?? new MemoryStore();
    this.memoryMonitor = new MemoryMonitor({
      limit: memoryLimit,
      fractions: memory,
      store: this.spill,
      processMemory: memory.processMemory,
      onPause: (paused) => this.setPaused(paused),
      ...(garbage !== undefined
        ? {
            collectGarbage: (m: number) => {
              this.executor?.collectGarbage?.();
              return garbage.collectIfAbove(m);
            },
          }
        : {}),
      logger: options.logger,
    });
    // Large values received from peers and clients land in shared memory, so that handing one to
    // an executor thread as a task's dependency shares it instead of copying it (structured clone
    // of a 200 MiB Buffer is two copies: ~0.4 s). Process-wide; the inline executor needs nothing.
    if (options.executor === 'threads') setSharedReassembly(true);
    this.closed = new Promise((resolve) => (this.resolveClosed = resolve));
    this.pool = new ConnectionPool({ timeout: options.connectTimeoutMs, connectOptions: options.comm });
    this.server = new Server({
      ...options.comm,
      name: 'dd-worker',
      logger: {
        debug: () => {},
        info: () => {},
        warn: (m: string, ...r: unknown[]) => options.logger.warn(m, ...r),
        error: (m: string, ...r: unknown[]) => options.logger.warn(m, ...r),
      },
      handlers: {
        ...this.runner.handlers,
        ...this.plugins.handlers,
        'get-data': (msg: GetDataRequest, ctx: HandlerContext) => this.handleGetData(msg, ctx),
        'update-data': (msg: WorkerUpdateDataRequest) => this.handleUpdateData(msg),
        'delete-data': (msg: DeleteDataRequest) => this.handleDeleteData(msg),
        identity: () => this.identity(),
        close: () => {
          setImmediate(() => void this.close('close rpc'));
          return 'OK';
        },
      },
    });
    // State needs the address, known only after listen(); start() replaces this placeholder.
    this.state = undefined as unknown as WorkerState;
  }

  /**
   * Starts a worker: makes its local directory, starts its executor, listens, registers with the
   * scheduler. If it cannot (LocalDirectoryError, PreloadError, no scheduler within
   * deathTimeoutMs, ...), or `signal` aborts first (rejecting with its reason), the worker is
   * closed (nothing left running) before the promise rejects.
   */
  static async start(options: WorkerOptions, { signal }: { signal?: AbortSignal } = {}): Promise<Worker> {
    const compiled = compileWorkerOptions(options);
    signal?.throwIfAborted();
    const worker = new Worker(compiled);
    const starting = worker.startup();
    starting.catch(() => {}); // observed below (or outrun by an abort, after which it fails too)
    let onAbort: (() => void) | undefined;
    const aborted = new Promise<never>((_resolve, reject) => {
      onAbort = () => reject(signal?.reason ?? new Error('Worker: start aborted'));
      signal?.addEventListener('abort', onAbort, { once: true });
    });
    try {
      // A start that waits on something close() cannot interrupt (a preload's ddSetup) still
      // gives way to the signal.
      await Promise.race([starting, aborted]);
    } catch (err) {
      await worker.close('failed to start');
      throw err;
    } finally {
      signal?.removeEventListener('abort', onAbort!);
    }
    return worker;
  }

  get address(): string {
    return this.addressValue;
  }

  get name(): string {
    return this.nameValue;
  }

  /** Base URL of the worker's HTTP endpoints (`http://host:port`), if it serves them. */
  get dashboardUrl(): string | undefined {
    return this.http?.url;
  }

  /** Where uploaded modules are kept (client.uploadFile): `<localDirectory>/uploads`, once started. */
  get uploadDirectory(): string | undefined {
    return this.localDirectory === '' ? undefined : path.join(this.localDirectory, 'uploads');
  }

  /** `get-data` requests being served right now. */
  get outgoingTransfers(): number {
    return this.outgoing;
  }

  /**
   * Runs one bounded start-up step (it keeps what it makes on `this`, so that close() releases
   * it). close() waits for the step running, then tears down; no step starts once closing.
   */
  private async startStep(step: () => Promise<void>): Promise<void> {
    if (this.closing) throw new CommClosedError('Worker: closed while starting');
    const running = step();
    this.runningStep = running;
    try {
      await running;
    } finally {
      if (this.runningStep === running) this.runningStep = undefined;
    }
  }

  private async startup(): Promise<void> {
    const o = this.options;
    // The directory first: a worker that cannot use it starts nothing (no threads, no sockets).
    await this.startStep(async () => {
      if (o.localDirectory) {
        this.localDirectory = await prepareLocalDirectory(o.localDirectory);
      } else {
        this.localDirectory = await createLocalDirectory();
        this.ownsLocalDirectory = true;
      }
    });
    await this.startStep(async () => {
      this.executor = await createExecutor(o.executor, { nthreads: o.nthreads, cwd: o.cwd, queueDepth: o.executorQueueDepth, uploadDirectory: this.uploadDirectory, garbage: this.garbageSettings });
    });
    await this.startStep(async () => {
      await this.server.listen(o.listen);
    });
    if (!this.executor) throw new Error('unreachable: no executor after start-up');
    this.addressValue = this.server.address;
    this.nameValue = o.name ?? this.addressValue;
    // getWorker() inside tasks: this worker's address and name, and logEvent to the scheduler.
    this.executor?.setTaskWorker?.(taskWorkerHandle(this.addressValue, this.nameValue, (topic, msg) => this.sendToScheduler({ op: 'log-event', topic, msg })));
    if (o.dashboardAddress !== undefined) {
      const host = /^(tcp|tls|ws|wss):/.test(this.addressValue) ? getAddressHost(this.addressValue) : '127.0.0.1';
      const listen = parseListenAddress(o.dashboardAddress, host);
      await this.startStep(async () => {
        this.http = await WorkerHttpServer.start(this, listen);
      });
    }
    (this as { state: WorkerState }).state = new WorkerState({
      address: this.addressValue,
      nthreads: o.nthreads,
      executeSlots: this.executor.slotCount,
      resources: o.resources,
      data: this.data,
      validate: o.validate,
      transferIncomingCountLimit: o.transferIncomingCountLimit,
      transferIncomingBytesLimit: o.transferIncomingBytesLimit,
    });
    if (o.preload.length > 0) {
      if (this.closing) throw new CommClosedError('Worker: closed while starting');
      this.preloadTeardowns = await runPreloads(this, o.preload, this.runner.taskRunner());
      // Closed while ddSetup ran: close() has run the teardowns it knew of, not these.
      if (this.closing) await this.runPreloadTeardowns();
    }
    await this.connectToScheduler(true);
    // Closed meanwhile (close(), an aborted start): no heartbeats or memory watch for a closed worker.
    if (this.closing) throw new CommClosedError('Worker: closed while starting');
    this.status = 'running';
    this.scheduleHeartbeat();
    this.memoryMonitor.start(o.memory.monitorIntervalMs);
  }

  /**
   * A worker process uses ~70 MiB before it holds any data (Node, the executor threads): under
   * a limit of a few hundred MB that leaves little room between the target and the terminate
   * fraction. Said once at start (by a worker process's entry: in-process workers share their
   * process's RSS, which says nothing about them), so a nanny restart does not come as a surprise.
   */
  warnIfLimitLeavesLittleRoom(): void {
    const { memoryLimit, memory } = this.options;
    if (!(memoryLimit > 0) || memoryLimit === Infinity) return;
    const baseline = memory.processMemory();
    if (baseline < 0.25 * memoryLimit) return;
    this.options.logger.warn(
      `memory limit ${formatBytes(memoryLimit)} leaves little room for data: this worker process already uses ${formatBytes(baseline)} ` +
        `before holding any (it spills above ${memory.target === false ? 'its spill fraction' : `${Math.round(memory.target * 100)}%`} of the limit); consider a limit of at least ${formatBytes(8 * baseline)}`,
    );
  }

  // ----------------------------------------------------------------------------------------
  // Scheduler connection

  /** Registers on a fresh comm (retrying until deathTimeoutMs), then reads the stream. */
  private async connectToScheduler(initial: boolean): Promise<void> {
    const o = this.options;
    const deadline = o.deathTimeoutMs > 0 ? Date.now() + o.deathTimeoutMs : Infinity;
    this.deadline = deadline;
    let delay = 50;
    let lastError: unknown;
    while (!this.closing) {
      try {
        await this.register();
        return;
      } catch (err) {
        lastError = err;
        if (Date.now() + delay >= deadline) break;
        if (!initial) o.logger.debug?.(`reconnecting to scheduler ${o.scheduler}: ${(err as Error).message}`);
        await this.sleep(delay);
        delay = Math.min(delay * 2, 2000);
      }
    }
    if (this.closing) return;
    const msg = `could not reach the scheduler at ${o.scheduler} for ${o.deathTimeoutMs} ms: ${(lastError as Error)?.message ?? lastError}`;
    if (initial) throw new CommClosedError(msg);
    o.logger.warn(`${msg}; closing`);
    void this.close('death timeout');
  }

  private async register(): Promise<void> {
    const left = this.deadline - Date.now();
    const comm = await connect(this.options.scheduler, {
      ...this.options.comm,
      timeout: Math.max(1, Math.min(this.options.connectTimeoutMs, left)),
      signal: this.closeAbort.signal,
    });
    try {
      const nbytes: Record<Key, number> = {};
      for (const ts of this.state.tasks.values()) if (ts.state === 'memory') nbytes[ts.key] = ts.nbytes ?? 0;
      const req: RegisterWorkerRequest = {
        op: 'register-worker',
        address: this.addressValue,
        name: this.nameValue,
        host: getAddressHost(this.addressValue),
        nthreads: this.options.nthreads,
        memoryLimit: this.options.memoryLimit,
        resources: this.options.resources,
        nbytes,
        localDirectory: this.localDirectory,
        pid: process.pid,
        versions: VERSIONS,
      };
      if (this.http) req.services = { dashboard: this.http.port };
      if (this.options.nanny !== undefined) req.nanny = this.options.nanny;
      await comm.write(req);
      const reply = (await comm.read()) as { status?: string; result?: RegisterWorkerReply; error?: { name: string; message: string } };
      if (reply?.status !== 'OK' || !reply.result) {
        throw new Error(`scheduler refused registration: ${reply?.error ? `${reply.error.name}: ${reply.error.message}` : JSON.stringify(reply)}`);
      }
      this.schedulerId = reply.result.schedulerId;
      if (reply.result.heartbeatIntervalMs > 0) this.heartbeatIntervalMs = reply.result.heartbeatIntervalMs;
      // Plugins and uploaded files first: the stream (compute-task) is read only once they are
      // set up and written (a plugin that fails is logged; the worker goes on without it).
      const plugins = reply.result.plugins;
      if (Array.isArray(plugins) && plugins.length > 0) await this.plugins.installAll(plugins);
    } catch (err) {
      comm.abort();
      throw err;
    }
    if (this.closing) {
      comm.abort();
      return;
    }
    this.stream = comm;
    // No batch interval: a batch limit of one message writes at once when the stream is idle
    // (a finished task is reported without delay), and what queues while a write is in flight
    // goes out together when it completes. handle() passes one stimulus's messages in one send().
    const batched = new BatchedSend({
      intervalMs: 1,
      maxBatchMessages: 1,
      name: 'worker->scheduler',
      onError: (err) => this.options.logger.warn(`stream to the scheduler failed: ${err.message}`),
    });
    batched.start(comm);
    this.batched = batched;
    // A paused worker tells a scheduler it (re)registers with, which thinks it runs.
    if (this.memoryMonitor.paused) this.sendStatus(true);
    void this.readStream(comm);
    for (const l of this.registeredListeners.splice(0)) l();
  }

  private async readStream(comm: Comm): Promise<void> {
    for (;;) {
      let msg: unknown;
      try {
        msg = await comm.read();
      } catch {
        break;
      }
      try {
        this.onSchedulerMessages(Array.isArray(msg) ? (msg as SchedulerToWorkerMsg[]) : [msg as SchedulerToWorkerMsg]);
      } catch (err) {
        this.options.logger.warn('failed to handle scheduler messages', err);
      }
    }
    if (this.stream === comm) {
      this.stream = undefined;
      this.batched = undefined;
    }
    if (!this.closing) {
      this.status = 'reconnecting';
      this.options.logger.debug?.(`lost the scheduler stream; reconnecting`);
      await this.connectToScheduler(false);
      if (!this.closing) this.status = 'running';
    }
  }

  private onSchedulerMessages(msgs: SchedulerToWorkerMsg[]): void {
    const events: WorkerEvent[] = [];
    for (const m of msgs) {
      switch (m.op) {
        case 'compute-task': {
          const ev: WorkerEvent = {
            type: 'compute-task',
            key: m.key,
            spec: m.spec,
            priority: m.priority,
            stimulusId: m.stimulusId,
          };
          if (m.dependencies !== undefined) {
            try {
              ev.dependencies = checkTaskDependencies(m.dependencies);
            } catch (err) {
              // Running the task without its inputs would be wrong, and half-applying the message
              // worse: the task errs with the reason, so nobody waits for it.
              this.options.logger.warn(`compute-task ${JSON.stringify(m.key)} is malformed: ${(err as Error).message}`);
              this.sendToScheduler({ op: 'task-erred', key: m.key, exception: wireError(err), startstops: [], stimulusId: m.stimulusId });
              break;
            }
          }
          if (m.resources) ev.resources = m.resources;
          if (m.duration !== undefined) ev.duration = m.duration;
          if (m.annotations) ev.annotations = m.annotations;
          events.push(ev);
          break;
        }
        case 'free-keys':
          events.push({ type: 'free-keys', keys: m.keys, stimulusId: m.stimulusId });
          break;
        case 'acquire-replicas':
          events.push({ type: 'acquire-replicas', whoHas: m.whoHas, nbytes: m.nbytes ?? {}, stimulusId: m.stimulusId });
          break;
        case 'remove-replicas':
          events.push({ type: 'remove-replicas', keys: m.keys, stimulusId: m.stimulusId });
          break;
        case 'steal-request':
          events.push({ type: 'steal-request', key: m.key, stimulusId: m.stimulusId });
          break;
        case 'remove-worker':
          // A transfer in progress from it fails now (gather-dep-network-failure) instead of
          // waiting on a peer that may be frozen; the state forgets what it held.
          this.pool.abortAddress(m.worker);
          events.push({ type: 'remove-worker', worker: m.worker, stimulusId: m.stimulusId });
          break;
        case 'close':
          void this.close('scheduler asked');
          return;
        default:
          this.options.logger.warn(`ignoring unknown scheduler message ${JSON.stringify((m as { op?: unknown }).op)}`, m);
      }
    }
    if (events.length > 0) this.handle(events);
  }

  private scheduleHeartbeat(): void {
    if (this.closing) return;
    this.heartbeatTimer = setTimeout(() => void this.heartbeat(), this.heartbeatIntervalMs);
    this.heartbeatTimer.unref();
  }

  private async heartbeat(): Promise<void> {
    if (this.closing) return;
    if (this.stream) {
      try {
        const reply = await this.pool.rpc(this.options.scheduler).call<{ status?: string; heartbeatIntervalMs?: number } | undefined>(
          'heartbeat-worker',
          { address: this.addressValue, now: Date.now(), metrics: this.metrics() },
          { timeout: Math.max(this.heartbeatIntervalMs * 5, 5000) },
        );
        if (reply?.status === 'missing') {
          // The scheduler forgot us (e.g. it restarted): re-register on a fresh stream.
          this.stream?.abort();
        } else if (reply?.heartbeatIntervalMs && reply.heartbeatIntervalMs > 0) {
          this.heartbeatIntervalMs = reply.heartbeatIntervalMs;
        }
      } catch (err) {
        this.options.logger.debug?.(`heartbeat failed: ${(err as Error).message}`);
      }
    }
    this.scheduleHeartbeat();
  }

  /** Memory pressure (the memory monitor): stop or resume starting tasks, and tell the scheduler. */
  private setPaused(paused: boolean): void {
    this.handle([{ type: paused ? 'pause' : 'unpause', stimulusId: this.nextStimulus(paused ? 'pause' : 'unpause') }]);
    this.sendStatus(paused);
  }

  private sendStatus(paused: boolean): void {
    this.sendToScheduler({ op: 'worker-status-change', status: paused ? 'paused' : 'running', stimulusId: this.nextStimulus('worker-status-change') });
  }

  /** Whether the memory monitor has paused the worker. */
  get paused(): boolean {
    return this.memoryMonitor.paused;
  }

  /**
   * Logs a structured event under a topic (or several) in the scheduler's event log, as
   * client.logEvent does (tasks: getWorker().logEvent). Sent on the stream; dropped while the
   * worker is not connected. Throws TypeError for a bad topic or a message that cannot be encoded.
   */
  logEvent(topic: string | readonly string[], msg: unknown): void {
    this.sendToScheduler({ op: 'log-event', topic: checkEventTopic(topic), msg: checkEventMessage(msg) });
  }

  /** Resolves when the worker is registered (now, or after a reconnect). */
  whenRegistered(): Promise<void> {
    if (this.stream) return Promise.resolve();
    return new Promise((resolve) => this.registeredListeners.push(resolve));
  }

  metrics(): WorkerMetrics {
    const now = Date.now();
    const cpu = process.cpuUsage(this.lastCpu);
    const dt = Math.max(1, now - this.lastCpuTime);
    this.lastCpu = process.cpuUsage();
    this.lastCpuTime = now;
    return {
      executing: this.state.executing.size,
      ready: this.state.readyCount,
      inMemory: this.data.size,
      inFlight: this.state.inFlightCount,
      bytesInFlight: this.state.bytesInFlight,
      memory: process.memoryUsage.rss(),
      managedBytes: this.data.memoryBytes,
      spilledBytes: this.data.spilledBytes,
      cpu: Math.round(((cpu.user + cpu.system) / 1000 / dt) * 100),
      time: now,
    };
  }

  identity(): WorkerIdentity {
    return {
      address: this.addressValue,
      name: this.nameValue,
      host: getAddressHost(this.addressValue),
      nthreads: this.options.nthreads,
      memoryLimit: this.options.memoryLimit,
      resources: this.options.resources,
      localDirectory: this.localDirectory,
      pid: process.pid,
      ...(this.http ? { services: { dashboard: this.http.port } } : {}),
      lastSeen: Date.now(),
      metrics: this.metrics(),
    };
  }

  // ----------------------------------------------------------------------------------------
  // Events in, instructions out

  private nextStimulus(what: string): string {
    return `${what}-${++this.stimulusCounter}`;
  }

  /** Feeds events to the state machine and carries out its instructions. */
  private handle(events: readonly WorkerEvent[]): void {
    if (this.closing) return;
    const instructions = this.state.handleEvents(events);
    let toScheduler: WorkerToSchedulerMsg[] | undefined;
    for (const ins of instructions) {
      if (ins.type === 'send-to-scheduler') (toScheduler ??= []).push(ins.msg);
      else this.carryOut(ins);
    }
    // One send() per stimulus: its messages share one write.
    if (toScheduler !== undefined) this.sendAllToScheduler(toScheduler);
  }

  private carryOut(ins: Instruction): void {
    switch (ins.type) {
      case 'send-to-scheduler':
        this.sendToScheduler(ins.msg);
        return;
      case 'execute':
        void this.execute(ins.key);
        return;
      case 'gather-dep':
        void this.gatherDep(ins.worker, ins.keys);
        return;
      case 'retry-busy-worker-later': {
        const n = (this.busyCounts.get(ins.worker) ?? 0) + 1;
        this.busyCounts.set(ins.worker, n);
        const delay = Math.min(50 * 2 ** Math.min(n, 6), 2000);
        const t = setTimeout(() => {
          this.timers.delete(t);
          this.handle([{ type: 'retry-busy-worker', worker: ins.worker, stimulusId: this.nextStimulus('retry-busy-worker') }]);
        }, delay);
        this.timers.add(t);
        return;
      }
    }
  }

  /**
   * Task outcomes gathered in one turn of the event loop, handled as one stimulus: the executor
   * threads' results arrive as separate messages, and one handleStimulus + one stream write for
   * all of them costs much less than one each (setImmediate runs right after the poll phase
   * that delivered them, so a lone result is not held back). When the pool has answered every
   * job, execute() calls this at once instead: no other outcome can be on its way.
   */
  private readonly handleOutcomes = (): void => {
    this.outcomesScheduled = false;
    const events = this.outcomes;
    if (events.length === 0) return;
    this.outcomes = [];
    this.handle(events);
  };

  private sendToScheduler(...msgs: WorkerToSchedulerMsg[]): void {
    this.sendAllToScheduler(msgs);
  }

  private sendAllToScheduler(msgs: readonly WorkerToSchedulerMsg[]): void {
    // While disconnected, messages are dropped: re-registration reports the data this worker holds.
    if (this.batched && !this.batched.closed) this.batched.sendAll(msgs);
  }

  private async execute(key: Key): Promise<void> {
    const ts = this.state.tasks.get(key);
    const executor = this.executor;
    let event: WorkerEvent;
    if (!ts || !ts.spec || !executor) {
      const now = Date.now();
      event = {
        type: 'execute-failure',
        key,
        exception: { name: 'Error', message: `cannot execute ${key}: no run spec` },
        start: now,
        stop: now,
        stimulusId: this.nextStimulus('execute-failure'),
      };
    } else {
      const deps = new Map<Key, unknown>();
      let failure: WireError | undefined;
      try {
        for (const dep of ts.dependencies) {
          if (!this.data.has(dep.key)) {
            failure = { name: 'Error', message: `cannot execute ${key}: dependency ${dep.key} is not in memory` };
            break;
          }
          deps.set(dep.key, this.data.get(dep.key));
        }
      } catch (err) {
        // A spilled dependency that cannot be read back: the task fails with why, as in the
        // reference, instead of the rejection escaping this un-awaited call and ending the process.
        failure = wireError(err);
      }
      if (failure !== undefined) {
        const now = Date.now();
        event = {
          type: 'execute-failure',
          key,
          exception: failure,
          start: now,
          stop: now,
          stimulusId: this.nextStimulus('execute-failure'),
        };
      } else {
        const outcome = await executor.run({ key, spec: ts.spec, deps });
        // Outcomes that arrive in one turn of the event loop go into the state machine together.
        this.outcomes.push(outcome.ok
          ? {
              type: 'execute-success',
              key,
              value: outcome.value,
              nbytes: outcome.nbytes,
              valueType: outcome.type,
              start: outcome.start,
              stop: outcome.stop,
              stimulusId: this.nextStimulus('task-finished'),
            }
          : {
              type: 'execute-failure',
              key,
              exception: outcome.error,
              start: outcome.start,
              stop: outcome.stop,
              stimulusId: this.nextStimulus('task-erred'),
            });
        if (executor.idle === true) {
          // The pool has answered every job: no other outcome can arrive in this turn, so there
          // is nothing to wait for (a round trip saved the ~25 us of a setImmediate).
          this.handleOutcomes();
        } else if (!this.outcomesScheduled) {
          this.outcomesScheduled = true;
          setImmediate(this.handleOutcomes);
        }
        return;
      }
    }
    this.handle([event]);
  }

  private async gatherDep(worker: string, keys: Key[]): Promise<void> {
    const start = Date.now();
    let event: WorkerEvent;
    try {
      const reply = await this.pool
        .rpc(worker)
        .call<{ status: 'OK'; data: Record<Key, unknown> } | { status: 'busy' }>('get-data', { keys, who: this.addressValue });
      if (reply?.status === 'busy') {
        event = { type: 'gather-dep-busy', worker, stimulusId: this.nextStimulus('gather-dep-busy') };
      } else {
        this.busyCounts.delete(worker);
        const data = (reply as { data?: Record<Key, unknown> })?.data ?? {};
        const unsendable = (reply as { unsendable?: Record<Key, WireError> })?.unsendable;
        let nbytes = 0;
        for (const k in data) nbytes += this.state.tasks.get(k)?.nbytes ?? 0;
        this.transfers.incoming(nbytes);
        event = {
          type: 'gather-dep-success',
          worker,
          data,
          ...(unsendable !== undefined ? { unsendable } : {}),
          start,
          stop: Date.now(),
          stimulusId: this.nextStimulus('gather-dep-success'),
        };
      }
    } catch (err) {
      const e = err as { code?: string; name?: string };
      if (e?.name === 'DeserializationError' || e?.code === 'DD_ERR_DESERIALIZE') {
        event = { type: 'gather-dep-failure', worker, exception: wireError(err), stimulusId: this.nextStimulus('gather-dep-failure') };
      } else {
        // Unreachable, closed, timed out, or its handler failed: treat the peer as gone.
        if (!(err instanceof CommClosedError) && !(err instanceof TimeoutError)) {
          this.options.logger.debug?.(`get-data from ${worker} failed: ${(err as Error)?.message}`);
        }
        event = {
          type: 'gather-dep-network-failure',
          worker,
          exception: wireError(err),
          stimulusId: this.nextStimulus('gather-dep-network-failure'),
        };
      }
    }
    this.handle([event]);
  }

  // ----------------------------------------------------------------------------------------
  // Rpc handlers

  private async handleGetData(msg: GetDataRequest, ctx: HandlerContext): Promise<typeof NO_REPLY | { status: 'busy' }> {
    if (this.outgoing >= this.options.transferOutgoingCountLimit) {
      this.transfers.outgoingBusy++;
      return reply(ctx, { status: 'busy' });
    }
    this.outgoing++;
    try {
      const data: Record<Key, unknown> = {};
      let nbytes = 0;
      for (const key of msg.keys ?? []) {
        if (this.data.has(key)) {
          data[key] = this.data.get(key);
          nbytes += this.data.nbytes(key) ?? 0;
        }
      }
      this.transfers.outgoing(nbytes);
      // Write the reply here so the outgoing count covers the transfer itself.
      try {
        await ctx.comm.write({ status: 'OK', result: { status: 'OK', data } });
      } catch (err) {
        if (!(err instanceof SerializationError)) throw err;
        // Nothing was written (a message is encoded whole first). A value that cannot be encoded
        // (a function or class instance kept by the inline executor) is answered as unsendable,
        // so that the asker fails its task instead of taking this worker for gone.
        const unsendable: Record<Key, WireError> = {};
        for (const key of Object.keys(data)) {
          try {
            encodeMessage(data[key], { compression: null });
          } catch (e) {
            unsendable[key] = wireError(e);
            delete data[key];
            this.options.logger.warn(`the value of ${key} cannot be sent to ${msg.who ?? 'a peer'}: ${(e as Error).message}`);
          }
        }
        await ctx.comm.write({ status: 'OK', result: { status: 'OK', data, unsendable } });
      }
    } finally {
      this.outgoing--;
    }
    return NO_REPLY;
  }

  private handleUpdateData(msg: WorkerUpdateDataRequest): { nbytes: Record<Key, number> } {
    const data = msg.data ?? {};
    this.handle([{ type: 'update-data', data, stimulusId: this.nextStimulus('update-data') }]);
    const nbytes: Record<Key, number> = {};
    for (const key of Object.keys(data)) nbytes[key] = this.data.nbytes(key) ?? 0;
    return { nbytes };
  }

  private handleDeleteData(msg: DeleteDataRequest): string {
    this.handle([{ type: 'free-keys', keys: msg.keys ?? [], stimulusId: this.nextStimulus('delete-data') }]);
    return 'OK';
  }

  // ----------------------------------------------------------------------------------------
  // Closing

  private get closing(): boolean {
    return this.closePromise !== undefined;
  }

  /** Closes gracefully: stops timers, flushes and closes the scheduler stream, the server, the pool and the threads. Idempotent. */
  close(reason = 'closed'): Promise<void> {
    this.closePromise ??= this.doClose(reason);
    return this.closePromise;
  }

  private async doClose(_reason: string): Promise<void> {
    this.status = 'closing';
    this.closeAbort.abort(); // a registration still retrying stops now
    // A start-up step under way (threads starting, a socket being bound) finishes first, so that
    // what it makes is released below.
    await this.runningStep?.catch(() => undefined);
    this.memoryMonitor.stop();
    await this.plugins.close().catch(() => undefined);
    await this.runPreloadTeardowns();
    if (this.heartbeatTimer) clearTimeout(this.heartbeatTimer);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    for (const wake of this.sleepers) wake();
    this.sleepers.clear();
    const settle = (p: Promise<unknown> | undefined) => p?.catch(() => {});
    if (this.stream && !this.stream.closed && _reason !== 'scheduler asked') {
      // A clean departure: the scheduler need not treat our tasks as suspicious. (`unregister-worker`
      // is the scheduler's rpc; not in messages.ts, hence the local shape.)
      const req: UnregisterWorkerRequest = { address: this.addressValue, safe: true };
      await settle(this.pool.rpc(this.options.scheduler).call('unregister-worker', { ...req }, { timeout: 2000 }));
    }
    await settle(this.batched?.close());
    this.stream?.abort();
    await settle(this.server.close());
    await settle(this.http?.close());
    await settle(this.pool.close());
    await settle(this.executor?.close());
    this.spill?.clear();
    if (this.ownsLocalDirectory && this.localDirectory) {
      await settle(fs.promises.rm(this.localDirectory, { recursive: true, force: true }));
    }
    for (const l of this.registeredListeners.splice(0)) l();
    this.status = 'closed';
    this.resolveClosed();
  }

  private async runPreloadTeardowns(): Promise<void> {
    for (const { specifier, teardown } of this.preloadTeardowns.splice(0)) {
      try {
        await teardown(this);
      } catch (err) {
        this.options.logger.warn(`preload module ${JSON.stringify(specifier)}: ddTeardown failed: ${(err as Error)?.message ?? String(err)}`);
      }
    }
  }

  /** A timer that close() cuts short. */
  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        this.timers.delete(t);
        this.sleepers.delete(resolve);
        resolve();
      }, ms);
      this.timers.add(t);
      this.sleepers.add(resolve);
    });
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}

async function reply(ctx: HandlerContext, result: unknown): Promise<typeof NO_REPLY> {
  await ctx.comm.write({ status: 'OK', result });
  return NO_REPLY;
}
