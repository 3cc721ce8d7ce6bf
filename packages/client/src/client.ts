// Client: connects to a scheduler, submits tasks, holds Futures (reference-counted per key),
// moves data to and from workers directly (scatter, gather).

import { randomUUID } from 'node:crypto';
import { readFile, rename, rm, writeFile } from 'node:fs/promises';
import {
  encodeTaskSpec,
  type Address,
  type ClientToSchedulerMsg,
  type Key,
  type SchedulerIdentity,
  type SchedulerToClientMsg,
  type StoryEntry,
  type TaskDefinition,
  type WireError,
} from '@dd/protocol';
import {
  CancelledError,
  ClientClosedError,
  TimeoutError,
  FutureLostError,
  GatherError,
  RemoteError,
  SchedulerFileError,
} from './errors';
import { functionName, toFunctionRef, type ModuleFunction, type Runnable } from './function-ref';
import { Future, FutureState, isFuture, withTimeout, type FutureOwner } from './future';
import { dataKey, randomToken, taskKey, typeName } from './keys';
import { LocalCluster, type LocalClusterOptions } from './local-cluster';
import { commLink, type CallOptions, type LinkFactory, type LinkHandlers, type LinkOptions, type SchedulerLink } from './link';
import type { CommOptions } from '@dd/comm';
import { checkTaskOptions, mergeOptions, toList, type ClientOptions, type ScatterOptions, type TaskOptions } from './options';
import { collectFutures, replaceFutures, SKIP, substituteFutures } from './structure';
import { getGraph, type GetOptions, type Graph, type GraphOptions, type KeysSpec } from './graph';
import { computeDelayed, persistDelayed, type Delayed } from './delayed';
import { registerClient, unregisterClient } from './default-client';
import * as clusterData from './cluster-data';
import * as management from './cluster-management';

/** Anything with a scheduler address: a LocalCluster or your own cluster manager. */
export interface ClusterLike {
  readonly schedulerAddress: string;
  /**
   * An address that reaches the same scheduler from inside this process (inproc://), when the
   * scheduler runs here: the client connects through it instead, without the network.
   */
  readonly localSchedulerAddress?: string;
}

export type ConnectTarget = string | ClusterLike | { schedulerFile: string } | undefined;

export interface ConnectOptions {
  /** Connect + register timeout in ms (default 10 000). */
  timeout?: number;
  /** Options for the LocalCluster started when no address is given. */
  cluster?: LocalClusterOptions;
  /** Interval of the client's stream batches, ms (default 0: a message is written at once when the stream is idle). */
  batchIntervalMs?: number;
  /** Heartbeat to the scheduler, ms (default 5000; 0 disables). */
  heartbeatIntervalMs?: number;
  /**
   * Options of the client's connections, to the scheduler and to workers (gather): TLS material
   * (`ca`, `cert`, `key`: PEM strings or Buffers) for a `tls://` or `wss://` scheduler, frame
   * limits, compression.
   */
  comm?: CommOptions;
  /** @internal replace the transport (tests with a fake scheduler). */
  link?: LinkFactory;
  /**
   * How long to keep trying to reconnect when the scheduler goes away, ms (default 30 000; 0:
   * close at once). Futures of the lost connection become lost either way; new submissions
   * wait for the new connection.
   */
  reconnectTimeout?: number;
}

export interface GatherOptions {
  /** 'raise' (default): reject with the first task error. 'skip': leave failed ones out. */
  errors?: 'raise' | 'skip';
  /** Fetch from workers directly (default true); false asks the scheduler to gather. */
  direct?: boolean;
  timeout?: number;
}

/** Allows a Future (or nested Futures) wherever a value of type T is expected. */
export type Futurized<T> =
  | T
  | Future<T>
  | (T extends readonly (infer E)[] ? Futurized<E>[] : never)
  | (T extends Record<string, unknown> ? { [K in keyof T]: Futurized<T[K]> } : never);
export type FutureArgs<A extends readonly unknown[]> = { [K in keyof A]: Futurized<A[K]> };
type AnyFn = (...args: any[]) => unknown;
type ResultOf<F> = F extends (...args: any[]) => infer R ? Awaited<R> : unknown;

/**
 * Tasks going out as one update-graph. `sealed`: a cancel was requested after these were queued,
 * so tasks queued later go in a new batch (a resubmission of a cancelled key waits for the cancel,
 * and must not hold back what was queued before it).
 */
interface GraphBatch {
  kind: 'graph';
  /** Unique per client (FutureState.queuedIn). */
  id: number;
  userPriority: number | undefined;
  fifoTimeoutMs: number | undefined;
  tasks: TaskDefinition[];
  keys: Key[];
  sealed: boolean;
}

// The scheduler's view of one outgoing stream message, queued until the next flush so that
// many submits in one tick become one update-graph (and releases stay in program order).
type Outgoing =
  | GraphBatch
  | { kind: 'release'; keys: Key[] }
  | { kind: 'desire'; keys: Key[] };

let stimulusCounter = 0;
function stimulus(prefix: string): string {
  return `${prefix}-${Date.now()}-${++stimulusCounter}`;
}

const CLOSURE_HINT = 'enclosing scope';
/** The scheduler's client id that keeps fire-and-forget tasks until they are done. */
export const FIRE_AND_FORGET_CLIENT = 'fire-and-forget';

/** Adds the "uses a variable from its enclosing scope" explanation to a ReferenceError from a task. */
export function explainRemoteError(wire: WireError): WireError {
  if (wire.name !== 'ReferenceError' || wire.message.includes(CLOSURE_HINT)) return wire;
  const m = /^(\S+) is not defined/.exec(wire.message);
  if (m === null) return wire;
  return {
    ...wire,
    message:
      `${wire.message}. The task's function probably uses a variable from its enclosing scope ("${m[1]}"): ` +
      `functions travel to workers by source and must be self-contained. Pass "${m[1]}" as an argument, ` +
      `require()/import() it inside the function, or name a module function with ref(module, export).`,
  };
}

/** A view of the client with options bound: `client.options({priority: 10}).submit(...)`. */
export class ClientView {
  /** @internal */
  constructor(
    readonly client: Client,
    /** @internal */ readonly _options: ClientOptions,
  ) {}

  submit<F extends AnyFn>(fn: F | ModuleFunction<F>, ...args: FutureArgs<Parameters<F>>): Future<ResultOf<F>> {
    return this.client._submit(this._options, fn as Runnable, args) as Future<ResultOf<F>>;
  }

  map<F extends AnyFn>(fn: F | ModuleFunction<F>, ...iterables: Iterable<unknown>[]): Future<ResultOf<F>>[] {
    return this.client._map(this._options, fn as Runnable, iterables) as Future<ResultOf<F>>[];
  }

  scatter<T>(data: T[], options?: ScatterOptions): Future<T>[];
  scatter<T>(data: T, options?: ScatterOptions): Future<T>;
  scatter(data: unknown, options: ScatterOptions = {}): Future | Future[] {
    return this.client._scatter(mergeOptions(this._options, options as ClientOptions) as ScatterOptions, data);
  }

  options(options: ClientOptions): ClientView {
    checkTaskOptions(options, 'options()');
    return new ClientView(this.client, mergeOptions(this._options, options));
  }

  get(graph: Graph, keys: KeysSpec, options: GetOptions = {}): Promise<unknown> {
    return getGraph(this.client, graph, keys, mergeOptions(this._options, options as ClientOptions) as GetOptions);
  }

  compute<T>(value: Delayed<T>): Future<T>;
  compute(value: readonly Delayed[]): Future[];
  compute(value: Delayed | readonly Delayed[]): Future | Future[] {
    return computeDelayed(this.client, value as Delayed, this._options as GraphOptions);
  }

  persist<T>(value: Delayed<T>): Delayed<T>;
  persist(value: readonly Delayed[]): Delayed[];
  persist(value: Delayed | readonly Delayed[]): Delayed | Delayed[] {
    return persistDelayed(this.client, value as Delayed, this._options as GraphOptions);
  }
}

export type ClientStatus = 'running' | 'closing' | 'closed';

interface ReconnectWith {
  address: string;
  factory: LinkFactory;
  handlers: LinkHandlers;
  options: LinkOptions;
  timeoutMs: number;
}

export class Client implements FutureOwner, AsyncDisposable {
  readonly id: string;
  #status: ClientStatus = 'running';
  #link!: SchedulerLink;
  #publicAddress: string | undefined;
  #cluster: LocalCluster | undefined;
  /** The scheduler file this client connected through or wrote (writeSchedulerFile). */
  #schedulerFile: string | undefined;
  readonly #states = new Map<Key, FutureState>();
  readonly #refcount = new Map<Key, number>();
  readonly #registry = new FinalizationRegistry<Key>((key) => this.#decref(key));
  #outgoing: Outgoing[] = [];
  #flushScheduled = false;
  #fetchBatch: Map<Key, Array<{ resolve(v: unknown): void; reject(e: unknown): void }>> | undefined;
  #heartbeat: NodeJS.Timeout | undefined;
  #closing: Promise<void> | undefined;
  /** Futures kept alive by fireAndForget until they are done. */
  readonly #forgotten = new Set<Future>();
  #connectionError: Error | undefined;
  /**
   * Keys this client just cancelled, with the time: the scheduler's cancelled-keys echo may
   * arrive after the same key was submitted again, and must not cancel the new future.
   */
  readonly #cancelEchoes = new Map<Key, { at: number }>();
  /**
   * Keys whose cancel rpc is in flight, with its settling: a submission of such a key is a new
   * computation, and its update-graph waits until the scheduler has handled the cancel (sent
   * earlier, it would only add this client's wish to the task being cancelled).
   */
  readonly #cancelling = new Map<Key, Promise<void>>();
  /** States a cancel() in flight is for: a submission of their key makes a new state. */
  readonly #cancelRequested = new WeakSet<FutureState>();
  /** Stream barriers waiting for the scheduler's answer, by id (#streamBarrier). */
  readonly #barriers = new Map<number, () => void>();
  #batchIds = 0;
  /**
   * States a fetch took back to pending because no worker held their result any more (see
   * #rescheduleLost); releasing the last Future of one while it waits cancels it, since the scheduler
   * will not report a key nobody wants.
   */
  readonly #recomputing = new WeakSet<FutureState>();
  /** How many times in a row a fetch found no holder of a state's result (#rescheduleLost). */
  readonly #refetches = new WeakMap<FutureState, number>();
  #nextBarrier = 0;
  /** How the link was made, to make it again after the scheduler went away. */
  #reconnectWith: ReconnectWith | undefined;
  /** Set while reconnecting: rpc calls wait for it, stream messages stay queued. */
  #reconnecting: Promise<void> | undefined;
  /** Aborts the connection attempt of a reconnect when the client closes. */
  #reconnectAbort: AbortController | undefined;

  private constructor(id: string) {
    this.id = id;
  }

  /**
   * Connects to a scheduler: an address (`tcp://host:port`), a cluster object (LocalCluster),
   * `{ schedulerFile }` (JSON with `address`), or nothing (starts a LocalCluster the client owns
   * and stops on close()).
   */
  static async connect(target?: ConnectTarget, options: ConnectOptions = {}): Promise<Client> {
    const client = new Client(`Client-${randomUUID()}`);
    let address: string;
    let owned: LocalCluster | undefined;
    // What schedulerAddress reports when the connection goes through an in-process address.
    let publicAddress: string | undefined;
    if (target === undefined) {
      const cluster = await LocalCluster.start(options.cluster ?? {});
      owned = cluster;
      address = cluster.localSchedulerAddress;
      publicAddress = cluster.schedulerAddress;
    } else if (typeof target === 'string') {
      address = target;
    } else if ('schedulerFile' in target) {
      const info = JSON.parse(await readFile(target.schedulerFile, 'utf8')) as { address?: unknown };
      if (typeof info.address !== 'string') throw new TypeError(`scheduler file ${target.schedulerFile} has no "address"`);
      address = info.address;
      client.#schedulerFile = target.schedulerFile;
    } else if (typeof target === 'object' && target !== null && typeof target.schedulerAddress === 'string') {
      address = target.schedulerAddress;
      if (typeof target.localSchedulerAddress === 'string') {
        address = target.localSchedulerAddress;
        publicAddress = target.schedulerAddress;
      }
    } else {
      throw new TypeError('Client.connect(target): expected an address, a cluster, { schedulerFile } or nothing');
    }
    const handlers: LinkHandlers = { onMessage: (m) => client.#onMessage(m), onClose: (e) => client.#onConnectionLost(e) };
    const linkOptions: LinkOptions = {
      clientId: client.id,
      timeout: options.timeout ?? 10_000,
      batchIntervalMs: options.batchIntervalMs,
      versions: { dd: '0.1.0' },
      ...(options.comm !== undefined ? { comm: options.comm } : {}),
    };
    const factory = options.link ?? commLink;
    client.#reconnectWith = { address, factory, handlers, options: linkOptions, timeoutMs: options.reconnectTimeout ?? 30_000 };
    try {
      client.#link = await factory(address, handlers, linkOptions);
    } catch (err) {
      await owned?.close();
      throw err;
    }
    client.#cluster = owned;
    client.#publicAddress = publicAddress;
    registerClient(client);
    const hb = options.heartbeatIntervalMs ?? 5000;
    if (hb > 0) {
      client.#heartbeat = setInterval(() => {
        if (client.#status === 'running' && client.#reconnecting === undefined) client.#link.send({ op: 'heartbeat-client', client: client.id });
      }, hb);
      client.#heartbeat.unref();
    }
    return client;
  }

  get status(): ClientStatus {
    return this.#status;
  }

  /** False while the client is reconnecting to a scheduler that went away. */
  get connected(): boolean {
    return this.#status === 'running' && this.#reconnecting === undefined;
  }

  /** The scheduler's address (its network address also when this client reaches it in-process). */
  get schedulerAddress(): string {
    return this.#publicAddress ?? this.#link.address;
  }

  /** The LocalCluster connect() started (no address given), stopped by close(). */
  get cluster(): LocalCluster | undefined {
    return this.#cluster;
  }

  get schedulerId(): string {
    return this.#link.schedulerId;
  }

  // ---------------------------------------------------------------------------------------------
  // Submitting

  /** Runs `fn(...args)` on a worker; returns its Future at once. Futures in args (any depth) become their values. */
  submit<F extends AnyFn>(fn: F | ModuleFunction<F>, ...args: FutureArgs<Parameters<F>>): Future<ResultOf<F>> {
    return this._submit(EMPTY, fn as Runnable, args) as Future<ResultOf<F>>;
  }

  /** `fn` over the zipped iterables (stops at the shortest); one Future per call, all sent as one update-graph. */
  map<F extends AnyFn>(fn: F | ModuleFunction<F>, ...iterables: Iterable<unknown>[]): Future<ResultOf<F>>[] {
    return this._map(EMPTY, fn as Runnable, iterables) as Future<ResultOf<F>>[];
  }

  /** A view with options bound for submit/map/scatter. */
  options(options: ClientOptions): ClientView {
    checkTaskOptions(options, 'options()');
    return new ClientView(this, options);
  }

  /**
   * Computes `keys` (one key or a nested list) of a dask-style graph and resolves to their
   * values in the same shape; intermediate results are freed as soon as they are used (graph.ts).
   */
  get(graph: Graph, keys: KeysSpec, options: GetOptions = {}): Promise<unknown> {
    return getGraph(this, graph, keys, options);
  }

  /** Starts computing Delayed values (delayed.ts): a Future for one, an array of Futures for an array; at once. */
  compute<T>(value: Delayed<T>, options?: GraphOptions): Future<T>;
  compute(value: readonly Delayed[], options?: GraphOptions): Future[];
  compute(value: Delayed | readonly Delayed[], options: GraphOptions = {}): Future | Future[] {
    return computeDelayed(this, value as Delayed, options);
  }

  /** Starts computing Delayed values; the same values, now backed by the running Futures. */
  persist<T>(value: Delayed<T>, options?: GraphOptions): Delayed<T>;
  persist(value: readonly Delayed[], options?: GraphOptions): Delayed[];
  persist(value: Delayed | readonly Delayed[], options: GraphOptions = {}): Delayed | Delayed[] {
    return persistDelayed(this, value as Delayed, options);
  }

  /** @internal */
  _submit(opts: ClientOptions, fn: Runnable, args: readonly unknown[], key?: string): Future {
    this.#checkRunning();
    if (opts.actor === true) throw new TypeError('actors are not supported yet');
    const fnRef = toFunctionRef(fn);
    const deps: Future[] = [];
    const wireArgs = replaceFutures(args, (f) => deps.push(f)) as unknown[];
    const name = functionName(fn);
    if (key === undefined) {
      if (opts.key !== undefined) {
        if (typeof opts.key !== 'string') throw new TypeError('options.key for submit must be a string');
        key = opts.key;
      } else {
        key = opts.pure === false ? `${name}-${randomToken()}` : taskKey(fn, wireArgs);
      }
    }
    let state = this.#states.get(key);
    if (!this.#reusable(state)) {
      const depStates = this.#checkDependencies(deps);
      state = new FutureState(key);
      this.#states.set(key, state);
      const def: TaskDefinition = {
        key,
        spec: encodeTaskSpec({ fn: fnRef, args: wireArgs }),
        dependencies: depStates.length === 0 ? [] : [...new Set(depStates.map((s) => s.key))],
      };
      const workers = toList(opts.workers);
      if (workers !== undefined) def.workers = workers;
      if (opts.allowOtherWorkers !== undefined) def.allowOtherWorkers = opts.allowOtherWorkers;
      if (opts.resources !== undefined) def.resources = opts.resources;
      if (opts.retries !== undefined) def.retries = opts.retries;
      if (opts.annotations !== undefined) def.annotations = opts.annotations;
      state.definition = def;
      state.userPriority = opts.priority;
      state.fifoTimeoutMs = opts.fifoTimeout;
      if (depStates.length > 0) {
        const st = state;
        st.dependencies = depStates;
        st.onDone(() => {
          // Only erred tasks need their inputs again (retry); finished ones let them go.
          if (st.status === 'finished') st.dependencies = undefined;
        });
      }
      state.queuedIn = this.#queueTask(def, opts.priority, opts.fifoTimeout).id;
    }
    return this.#makeFuture(key, state);
  }

  /** @internal */
  _map(opts: ClientOptions, fn: Runnable, iterables: Iterable<unknown>[]): Future[] {
    this.#checkRunning();
    if (iterables.length === 0) throw new TypeError('map(fn, ...iterables) needs at least one iterable');
    const iters = iterables.map((it) => {
      if (it === null || typeof (it as Iterable<unknown>)[Symbol.iterator] !== 'function') {
        throw new TypeError('map(fn, ...iterables): every argument after fn must be iterable');
      }
      return (it as Iterable<unknown>)[Symbol.iterator]();
    });
    const keys = Array.isArray(opts.key) ? opts.key : undefined;
    const prefix = typeof opts.key === 'string' ? opts.key : undefined;
    const perCall: ClientOptions = { ...opts, key: undefined };
    const out: Future[] = [];
    for (let i = 0; ; i++) {
      const args: unknown[] = [];
      for (const it of iters) {
        const r = it.next();
        if (r.done === true) return out;
        args.push(r.value);
      }
      let key: string | undefined;
      if (keys !== undefined) {
        key = keys[i];
        if (key === undefined) throw new RangeError(`options.key lists ${keys.length} keys but map has more calls`);
      } else if (prefix !== undefined) {
        key = perCall.pure === false ? `${prefix}-${randomToken()}` : taskKey(fn, replaceFutures(args, () => {}) as unknown[], prefix);
      }
      out.push(this._submit(perCall, fn, args, key));
    }
  }

  /** Whether a submission of the state's key joins it (else it is a new computation). */
  #reusable(state: FutureState | undefined): state is FutureState {
    return state !== undefined && state.status !== 'cancelled' && state.status !== 'lost' && !this.#cancelRequested.has(state);
  }

  #checkDependencies(deps: Future[]): FutureState[] {
    const out: FutureState[] = [];
    for (const f of deps) {
      if (f.client !== this) throw new TypeError(`future ${f.key} belongs to another client; gather it or scatter its value instead`);
      if (f.released) throw new TypeError(`future ${f.key} was released and cannot be used as an argument`);
      if (f.status === 'cancelled') throw new CancelledError(f.key, 'a cancelled future cannot be used as an argument');
      out.push(f._state);
    }
    return out;
  }

  /**
   * @internal Queues a whole graph (graph.ts, delayed.ts): `tasks` go out as given, in order
   * (their position is their graph order); the client holds Futures for `wanted` only (returned
   * in that order), so the scheduler frees intermediate results once their dependents are done.
   * `deps` are the Futures the tasks use. Nothing is sent when every wanted key is already held.
   */
  _submitGraph(tasks: readonly TaskDefinition[], wanted: readonly Key[], deps: readonly Future[], opts: ClientOptions): Future[] {
    this.#checkRunning();
    this.#checkDependencies(deps as Future[]);
    const freshStates: FutureState[] = [];
    const states = wanted.map((key) => {
      let state = this.#states.get(key);
      if (!this.#reusable(state)) {
        state = new FutureState(key);
        this.#states.set(key, state);
        state.userPriority = opts.priority;
        state.fifoTimeoutMs = opts.fifoTimeout;
        freshStates.push(state);
      }
      return state;
    });
    if (freshStates.length > 0) {
      const batch = this.#graphBatch(opts.priority, opts.fifoTimeout);
      for (const t of tasks) batch.tasks.push(t);
      for (const k of new Set(wanted)) batch.keys.push(k);
      for (const st of freshStates) st.queuedIn = batch.id;
      this.#scheduleFlush();
    }
    return wanted.map((key, i) => this.#makeFuture(key, states[i]!));
  }

  /**
   * The batch queued last, if any. Read after a length check: reading index -1 of an empty queue
   * (after every flush) deoptimized #queueTask, the client's per-submit path (--trace-deopt).
   */
  #lastOutgoing(): Outgoing | undefined {
    const out = this.#outgoing;
    return out.length > 0 ? out[out.length - 1] : undefined;
  }

  /** Queues a task; returns the batch it went in. */
  #queueTask(def: TaskDefinition, userPriority: number | undefined, fifoTimeoutMs: number | undefined): GraphBatch {
    const batch = this.#graphBatch(userPriority, fifoTimeoutMs);
    batch.tasks.push(def);
    batch.keys.push(def.key);
    this.#scheduleFlush();
    return batch;
  }

  /** The batch that tasks with these options join: the last one queued if it fits, else a new one. */
  #graphBatch(userPriority: number | undefined, fifoTimeoutMs: number | undefined): GraphBatch {
    const last = this.#lastOutgoing();
    if (last !== undefined && last.kind === 'graph' && !last.sealed && last.userPriority === userPriority && last.fifoTimeoutMs === fifoTimeoutMs) return last;
    const batch: GraphBatch = { kind: 'graph', id: ++this.#batchIds, userPriority, fifoTimeoutMs, tasks: [], keys: [], sealed: false };
    this.#outgoing.push(batch);
    return batch;
  }

  #queueKeys(kind: 'release' | 'desire', key: Key): void {
    if (this.#status === 'closed') return;
    const last = this.#lastOutgoing();
    if (last !== undefined && last.kind === kind) last.keys.push(key);
    else this.#outgoing.push({ kind, keys: [key] });
    this.#scheduleFlush();
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    queueMicrotask(() => this.#flush());
  }

  /**
   * Sends everything queued, in order. A graph that depends on data still being scattered waits
   * (with everything after it) until the scheduler has registered that data: the scheduler
   * rejects a graph naming keys it does not know.
   */
  #flush(): void {
    this.#flushScheduled = false;
    const out = this.#outgoing;
    if (out.length === 0) return;
    if (this.#status === 'closed' || this.#link === undefined) {
      this.#outgoing = [];
      return;
    }
    // Kept for the new connection.
    if (this.#reconnecting !== undefined) return;
    // One send for the lot: a release and the next submission (a loop of submit, await, release)
    // reach the scheduler as one batch, handled as one stimulus, instead of two writes the
    // scheduler handled one after the other (measured: the update-graph then started ~130 us
    // later in a round trip).
    const msgs: ClientToSchedulerMsg[] = [];
    let sent = 0;
    for (const o of out) {
      if (o.kind === 'graph') {
        const pending = this.#pendingBeforeSending(o.tasks);
        if (pending !== undefined) {
          void pending.then(() => this.#scheduleFlush());
          break;
        }
      }
      sent++;
      let msg: ClientToSchedulerMsg;
      if (o.kind === 'graph') {
        for (let i = 0; i < o.tasks.length; i++) o.tasks[i]!.order = i;
        const m: ClientToSchedulerMsg = { op: 'update-graph', client: this.id, tasks: o.tasks, keys: o.keys, stimulusId: stimulus('update-graph') };
        if (o.userPriority !== undefined) m.userPriority = o.userPriority;
        if (o.fifoTimeoutMs !== undefined) m.fifoTimeoutMs = o.fifoTimeoutMs;
        msg = m;
      } else {
        msg = {
          op: o.kind === 'release' ? 'client-releases-keys' : 'client-desires-keys',
          client: this.id,
          keys: o.keys,
          stimulusId: stimulus(o.kind === 'release' ? 'client-releases-keys' : 'client-desires-keys'),
        };
      }
      msgs.push(msg);
    }
    out.splice(0, sent);
    if (msgs.length > 0) this.#link.sendAll(msgs);
  }

  /**
   * What must happen before `tasks` can be sent, if anything: a cancel of one of their keys in
   * flight, or a scatter still registering data that one of them depends on.
   */
  #pendingBeforeSending(tasks: readonly TaskDefinition[]): Promise<void> | undefined {
    if (this.#cancelling.size > 0) {
      for (const task of tasks) {
        const cancelling = this.#cancelling.get(task.key);
        if (cancelling !== undefined) return cancelling;
      }
    }
    for (const task of tasks) {
      for (const dep of task.dependencies) {
        const scattering = this.#states.get(dep)?.scattering;
        if (scattering !== undefined) return scattering;
      }
    }
    return undefined;
  }

  // ---------------------------------------------------------------------------------------------
  // Futures and reference counting

  #makeFuture(key: Key, state: FutureState): Future {
    this.#refcount.set(key, (this.#refcount.get(key) ?? 0) + 1);
    const f = new Future(key, this, state);
    this.#registry.register(f, key, f);
    return f;
  }

  /**
   * A new Future for an existing key (e.g. one another client computed or published). The
   * scheduler is told this client wants it (client-desires-keys).
   */
  futureOf<T = unknown>(key: Key): Future<T> {
    this.#checkRunning();
    let state = this.#states.get(key);
    if (state === undefined) {
      state = new FutureState(key);
      this.#states.set(key, state);
      this.#queueKeys('desire', key);
    }
    return this.#makeFuture(key, state) as Future<T>;
  }

  /** @internal */
  _releaseFuture(future: Future): void {
    this.#registry.unregister(future);
    this.#forgotten.delete(future);
    this.#decref(future.key);
  }

  #decref(key: Key): void {
    const n = (this.#refcount.get(key) ?? 0) - 1;
    if (n > 0) {
      this.#refcount.set(key, n);
      return;
    }
    this.#refcount.delete(key);
    const state = this.#states.get(key);
    if (state !== undefined) {
      this.#states.delete(key);
      if (state.status === 'pending' && this.#recomputing.has(state)) state.cancel('its last Future was released while its lost result was being computed again');
      if (state.scattering !== undefined) {
        // The scheduler learns about scattered keys at the end of scatter: release after that.
        void state.scattering.then(() => {
          if (!this.#refcount.has(key)) this.#queueKeys('release', key);
        });
        return;
      }
    }
    this.#queueKeys('release', key);
  }

  /** Keys this client holds Futures for, with their counts (for tests and debugging). */
  refcounts(): Map<Key, number> {
    return new Map(this.#refcount);
  }

  // ---------------------------------------------------------------------------------------------
  // Messages from the scheduler

  #onMessage(msg: SchedulerToClientMsg): void {
    switch (msg.op) {
      case 'key-in-memory': {
        const st = this.#states.get(msg.key);
        if (st !== undefined && st.scattering === undefined) {
          st.finish(msg.type);
          // A small primitive result came inline: awaiting the future needs no fetch.
          if (msg.value !== undefined) st.setInline(msg.value);
        }
        break;
      }
      case 'task-erred': {
        const st = this.#states.get(msg.key);
        if (st === undefined) break;
        const wire = explainRemoteError(msg.exception);
        const origin = typeof wire.data?.['key'] === 'string' ? (wire.data['key'] as string) : msg.key;
        st.setError(new RemoteError(wire, { key: origin }), wire);
        break;
      }
      case 'lost-data': {
        this.#states.get(msg.key)?.lost('the workers holding it are gone');
        break;
      }
      case 'cancelled-keys': {
        const now = Date.now();
        for (const key of msg.keys) {
          const echo = this.#cancelEchoes.get(key);
          if (echo !== undefined) {
            this.#cancelEchoes.delete(key);
            if (now - echo.at < 10_000) continue;
          }
          const st = this.#states.get(key);
          if (st === undefined) continue;
          this.#states.delete(key);
          st.cancel(msg.reason);
        }
        break;
      }
      case 'stream-barrier': {
        this.#barriers.get(msg.id)?.();
        this.#barriers.delete(msg.id);
        break;
      }
      default:
        break;
    }
  }

  /**
   * Resolves once the scheduler has read everything this client sent on its stream so far (or
   * the connection is gone: the next rpc then fails on its own).
   */
  async #streamBarrier(): Promise<void> {
    if (this.#reconnecting !== undefined) await this.#reconnecting;
    const id = ++this.#nextBarrier;
    const done = new Promise<void>((resolve) => this.#barriers.set(id, resolve));
    this._sendStream({ op: 'stream-barrier', client: this.id, id });
    await done;
  }

  #onConnectionLost(error: Error | undefined): void {
    for (const resolve of this.#barriers.values()) resolve();
    this.#barriers.clear();
    if (this.#status !== 'running' || this.#reconnecting !== undefined) return;
    const how = this.#reconnectWith;
    if (how !== undefined && how.timeoutMs > 0) {
      const cause = error ?? new Error('connection to the scheduler closed');
      // The scheduler forgets a client whose connection closes (and a restarted scheduler never
      // knew it): what this client had submitted is gone either way.
      const why = `lost the connection to the scheduler (${cause.message}); its computations are gone, submit them again`;
      for (const st of this.#states.values()) {
        if (st.status === 'pending' || st.status === 'finished') st.lost(why);
      }
      this.#forgotten.clear();
      void this.#link.close().catch(() => {});
      this.#reconnecting = this.#reconnect(how, cause);
      return;
    }
    this.#giveUp(error ?? new Error('connection to the scheduler closed'));
  }

  /** Tries to connect again with backoff until `timeoutMs`; then sends what was queued meanwhile. */
  async #reconnect(how: ReconnectWith, cause: Error): Promise<void> {
    const deadline = Date.now() + how.timeoutMs;
    let delay = 100;
    let last = cause;
    const abort = (this.#reconnectAbort = new AbortController());
    while (this.#status === 'running' && Date.now() < deadline) {
      try {
        // Short attempts (comm's connect retries within each); close() aborts the one running.
        const timeout = Math.max(200, Math.min(how.options.timeout ?? 10_000, 2_000, deadline - Date.now()));
        const link = await how.factory(how.address, how.handlers, { ...how.options, timeout, signal: abort.signal });
        if (this.#status !== 'running') {
          await link.close().catch(() => {});
          return;
        }
        this.#link = link;
        this.#reconnecting = undefined;
        this.#flush();
        return;
      } catch (err) {
        last = err instanceof Error ? err : new Error(String(err));
      }
      if (abort.signal.aborted) break;
      await new Promise((resolve) => setTimeout(resolve, Math.max(0, Math.min(delay, deadline - Date.now()))).unref());
      delay = Math.min(delay * 2, 2000);
    }
    this.#reconnecting = undefined;
    if (this.#status !== 'running') return;
    this.#giveUp(new Error(`could not reconnect to the scheduler at ${how.address} within ${how.timeoutMs} ms (${last.message})`));
  }

  #giveUp(error: Error): void {
    this.#connectionError = error;
    this.#status = 'closed';
    for (const st of this.#states.values()) {
      if (st.status === 'pending' || st.status === 'finished') st.lost(`lost the connection to the scheduler (${this.#connectionError.message})`);
    }
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    void this.#link.close().catch(() => {});
  }

  #checkRunning(): void {
    if (this.#status !== 'running') {
      throw new ClientClosedError(
        this.#connectionError !== undefined ? `client lost its scheduler: ${this.#connectionError.message}` : `client ${this.id} is ${this.#status}`,
      );
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Gathering

  /** @internal the value of one finished key; calls in the same tick share one gather. */
  _fetchValue(key: Key): Promise<unknown> {
    if (this.#status !== 'running') return Promise.reject(new ClientClosedError(`client ${this.id} is ${this.#status}`));
    return new Promise((resolve, reject) => {
      let batch = this.#fetchBatch;
      if (batch === undefined) {
        batch = new Map();
        this.#fetchBatch = batch;
        queueMicrotask(() => {
          this.#fetchBatch = undefined;
          void this.#runFetch(batch!);
        });
      }
      let waiters = batch.get(key);
      if (waiters === undefined) batch.set(key, (waiters = []));
      waiters.push({ resolve, reject });
    });
  }

  async #runFetch(batch: Map<Key, Array<{ resolve(v: unknown): void; reject(e: unknown): void }>>): Promise<void> {
    const keys = [...batch.keys()];
    // The states as they are now: a close or a release may take them out of #states meanwhile.
    const states = new Map(keys.map((key) => [key, this.#states.get(key)]));
    let data: Map<Key, unknown>;
    try {
      data = await this.#gatherKeys(keys);
    } catch (err) {
      for (const ws of batch.values()) for (const w of ws) w.reject(err);
      return;
    }
    const missing: Key[] = [];
    for (const key of keys) {
      const ws = batch.get(key)!;
      const v = data.get(key);
      if (v instanceof Unsendable) for (const w of ws) w.reject(new RemoteError(v.error, { key }));
      else if (data.has(key)) {
        this.#refetches.delete(states.get(key)!);
        for (const w of ws) w.resolve(v);
      } else missing.push(key);
    }
    if (missing.length === 0) return;
    // Lost results: all computed again at once, and each fetched as soon as it is back (through
    // _fetchValue, so those back in the same tick share one gather), none waiting for another.
    const waiting = new Map(this.#rescheduleLost(missing).map((st) => [st.key, st]));
    for (const key of missing) {
      const ws = batch.get(key)!;
      const st = waiting.get(key);
      if (st === undefined) {
        for (const w of ws) w.reject(this.#notFetchedError(key, states.get(key)));
        continue;
      }
      this.#fetchWhenBack(st).then(
        (v) => {
          for (const w of ws) w.resolve(v);
        },
        (err: unknown) => {
          for (const w of ws) w.reject(err);
        },
      );
    }
  }

  /**
   * The value of a state's key once the scheduler has computed it again (#rescheduleLost):
   * fetched through _fetchValue, so keys back in the same tick share one gather, and none waits
   * for another. Waits on the state's one deferred, so a caller that stops waiting (a timeout)
   * leaves nothing behind.
   */
  #fetchWhenBack(st: FutureState): Promise<unknown> {
    return st.wait().then(() => {
      if (st.status !== 'finished') throw this.#notFetchedError(st.key, st);
      return st.hasInline ? st.inline : this._fetchValue(st.key);
    });
  }

  /** Why a key's value could not be fetched: its state's error if it failed meanwhile (lost, cancelled, erred). */
  #notFetchedError(key: Key, st = this.#states.get(key)): Error {
    if (st !== undefined && st.status !== 'finished' && st.status !== 'pending' && st.error !== undefined) return st.error;
    return new FutureLostError(key, 'no worker holds its data');
  }

  /**
   * Finished keys that a fetch found on no worker: their holder died after the task finished, and
   * the scheduler is computing them again. Each one's state goes back to pending and the scheduler
   * is asked to report on the key (at once if it is back in memory already), as the reference's
   * gather "reschedules" missing keys. Returns the states to wait for, also those another fetch
   * took back to pending already. Left out: released keys, keys still being scattered, states
   * that failed meanwhile (lost, cancelled or erred: the caller rejects with their error), and
   * states computed again MAX_GATHER_RESCHEDULES times without a fetch that found them.
   */
  #rescheduleLost(keys: Key[]): FutureState[] {
    const states: FutureState[] = [];
    for (const key of keys) {
      const st = this.#states.get(key);
      if (st === undefined || st.scattering !== undefined) continue;
      if (st.status === 'finished') {
        const rounds = (this.#refetches.get(st) ?? 0) + 1;
        if (rounds > MAX_GATHER_RESCHEDULES) continue;
        this.#refetches.set(st, rounds);
        st.reset();
        this.#recomputing.add(st);
        this.#queueKeys('desire', key);
      } else if (st.status !== 'pending') {
        continue;
      }
      states.push(st);
    }
    if (states.length > 0) this.#flush();
    return states;
  }

  /** Values of keys from the workers holding them (flow 4), falling back to the scheduler's gather. */
  async #gatherKeys(keys: Key[], direct = true): Promise<Map<Key, unknown>> {
    const out = new Map<Key, unknown>();
    let remaining = [...new Set(keys)];
    const badWorkers = new Set<Address>();
    for (let attempt = 0; direct && remaining.length > 0 && attempt < 4; attempt++) {
      if (attempt > 0) await sleep(20 * attempt);
      const whoHas = await this.#call<Record<Key, Address[]>>('who-has', { keys: remaining });
      const byWorker = new Map<Address, Key[]>();
      let unheld = 0;
      for (const key of remaining) {
        const holders = (whoHas?.[key] ?? []).filter((w) => !badWorkers.has(w));
        if (holders.length === 0) {
          unheld++;
          continue;
        }
        // Prefer a worker already chosen for another key: fewer requests.
        const chosen = holders.find((w) => byWorker.has(w)) ?? holders[Math.floor(Math.random() * holders.length)]!;
        let list = byWorker.get(chosen);
        if (list === undefined) byWorker.set(chosen, (list = []));
        list.push(key);
      }
      await Promise.all(
        [...byWorker].map(async ([worker, wkeys]) => {
          try {
            const reply = await this.#link.callWorker<{ status?: string; data?: Record<Key, unknown>; unsendable?: Record<Key, WireError> }>(worker, 'get-data', { keys: wkeys });
            if (reply?.status === 'busy') return; // try again after a pause
            const d = reply?.data ?? {};
            for (const k of wkeys) if (Object.prototype.hasOwnProperty.call(d, k)) out.set(k, d[k]);
            // Held but impossible to send: asking another holder or the scheduler would fail the same way.
            for (const [k, error] of Object.entries(reply?.unsendable ?? {})) out.set(k, new Unsendable(error));
          } catch {
            badWorkers.add(worker);
          }
        }),
      );
      remaining = remaining.filter((k) => !out.has(k));
      if (unheld > 0 && byWorker.size === 0) break;
    }
    if (remaining.length > 0) {
      const reply = await this.#call<{ status: string; data?: Record<Key, unknown>; keys?: Key[]; unsendable?: Record<Key, WireError> }>('gather', { keys: remaining });
      const d = reply?.data ?? {};
      for (const k of remaining) if (Object.prototype.hasOwnProperty.call(d, k)) out.set(k, d[k]);
      for (const [k, error] of Object.entries(reply?.unsendable ?? {})) out.set(k, new Unsendable(error));
    }
    return out;
  }

  /**
   * Values of the Futures in `futures`, keeping its shape (arrays and plain objects at any
   * depth). With errors: 'skip', failed futures are left out of their array/object.
   */
  async gather<T>(futures: T, options: GatherOptions = {}): Promise<Gathered<T>> {
    const errors = options.errors ?? 'raise';
    if (errors !== 'raise' && errors !== 'skip') throw new TypeError(`gather: errors must be 'raise' or 'skip', got ${String(errors)}`);
    const fs = collectFutures(futures);
    for (const f of fs) if (f.client !== this) throw new TypeError(`future ${f.key} belongs to another client`);
    const states = [...new Set(fs.map((f) => f._state))];
    // One deadline for the whole call: waiting for the tasks, and fetching their values (which
    // may wait for lost ones to be computed again).
    const deadline = options.timeout === undefined ? undefined : Date.now() + options.timeout;
    await withTimeout(this.#waitStates(states, errors === 'raise'), options.timeout, 'gather');
    const fetching = (async () => {
      const need: Key[] = [];
      const cached = new Map<Key, unknown>();
      for (const st of states) {
        if (st.status !== 'finished') continue;
        if (st.hasInline) cached.set(st.key, st.inline);
        else if (st.value !== undefined) cached.set(st.key, await st.value);
        else need.push(st.key);
      }
      const data = need.length === 0 ? new Map<Key, unknown>() : await this.#gatherKeys(need, options.direct ?? true);
      // Lost results, once computed again, are fetched as result() fetches them (direct).
      const failed = new Map<Key, unknown>();
      const lost = this.#rescheduleLost(need.filter((k) => !data.has(k)));
      await Promise.all(lost.map((st) => this.#fetchWhenBack(st).then((v) => data.set(st.key, v), (err: unknown) => failed.set(st.key, err))));
      return { cached, data, failed };
    })();
    const { cached, data, failed } = deadline === undefined ? await fetching : await withTimeout(fetching, Math.max(0, deadline - Date.now()), 'gather', options.timeout);
    return substituteFutures(futures, (f) => {
      const st = f._state;
      if (st.status !== 'finished') {
        if (errors === 'skip') return SKIP;
        throw st.error ?? new Error(`future ${f.key} is ${st.status}`);
      }
      if (cached.has(f.key)) return cached.get(f.key);
      const v = data.get(f.key);
      if (v instanceof Unsendable) {
        if (errors === 'skip') return SKIP;
        throw new RemoteError(v.error, { key: f.key });
      }
      if (data.has(f.key)) return v;
      if (errors === 'skip') return SKIP;
      throw failed.get(f.key) ?? this.#notFetchedError(f.key);
    }) as Gathered<T>;
  }

  /** Resolves when every state is done; with raise, rejects at the first failure. */
  #waitStates(states: FutureState[], raise: boolean): Promise<void> {
    return new Promise((resolve, reject) => {
      let pending = 0;
      let settled = false;
      const check = (st: FutureState): boolean => {
        if (raise && st.status !== 'finished' && st.status !== 'pending') {
          settled = true;
          reject(st.error ?? new Error(`future ${st.key} is ${st.status}`));
          return true;
        }
        return false;
      };
      for (const st of states) {
        if (st.isDone()) {
          if (check(st)) return;
          continue;
        }
        pending++;
        st.onDone(() => {
          if (settled) return;
          if (check(st)) return;
          if (--pending === 0) {
            settled = true;
            resolve();
          }
        });
      }
      if (pending === 0) {
        settled = true;
        resolve();
      }
    });
  }

  // ---------------------------------------------------------------------------------------------
  // Scatter

  /**
   * Stores data on workers. An array gives one Future per element, anything else one Future;
   * returned at once, pending until the data is stored, then finished.
   */
  scatter<T>(data: T[], options?: ScatterOptions): Future<T>[];
  scatter<T>(data: T, options?: ScatterOptions): Future<T>;
  scatter(data: unknown, options: ScatterOptions = {}): Future | Future[] {
    return this._scatter(options, data);
  }

  /** @internal */
  _scatter(options: ScatterOptions, data: unknown): Future | Future[] {
    this.#checkRunning();
    if (isFuture(data)) throw new TypeError('scatter: the value is already a Future');
    const many = Array.isArray(data);
    const values: unknown[] = many ? (data as unknown[]) : [data];
    const keys = toList(options.key);
    if (keys !== undefined && keys.length !== values.length) throw new RangeError(`scatter: ${keys.length} keys given for ${values.length} values`);
    const futures: Future[] = [];
    const toSend = new Map<Key, { value: unknown; state: FutureState }>();
    values.forEach((value, i) => {
      if (isFuture(value)) throw new TypeError('scatter: values must not be Futures');
      const key = keys?.[i] ?? (options.hash === false ? `${typeName(value)}-${randomToken()}` : dataKey(value));
      let state = this.#states.get(key);
      if (state === undefined || state.status === 'cancelled' || state.status === 'lost' || state.status === 'error') {
        state = new FutureState(key);
        this.#states.set(key, state);
        toSend.set(key, { value, state });
      }
      futures.push(this.#makeFuture(key, state));
    });
    if (toSend.size > 0) {
      const done = this.#doScatter(toSend, options);
      for (const { state } of toSend.values()) state.scattering = done.then(() => {}, () => {});
    }
    return many ? futures : futures[0]!;
  }

  async #doScatter(items: Map<Key, { value: unknown; state: FutureState }>, options: ScatterOptions): Promise<void> {
    try {
      const workers = await this.#scatterTargets(options);
      const perWorker = new Map<Address, Record<Key, unknown>>();
      let i = 0;
      for (const [key, { value }] of items) {
        const targets = options.broadcast === true ? workers : [workers[i++ % workers.length]!];
        for (const w of targets) {
          let d = perWorker.get(w);
          if (d === undefined) perWorker.set(w, (d = {}));
          d[key] = value;
        }
      }
      const whoHas: Record<Key, Address[]> = {};
      const nbytes: Record<Key, number> = {};
      await Promise.all(
        [...perWorker].map(async ([w, d]) => {
          const reply = await this.#link.callWorker<{ nbytes?: Record<Key, number> }>(w, 'update-data', { data: d });
          for (const key of Object.keys(d)) {
            (whoHas[key] ??= []).push(w);
            nbytes[key] = reply?.nbytes?.[key] ?? nbytes[key] ?? 0;
          }
        }),
      );
      await this.#call('update-data', { client: this.id, whoHas, nbytes, stimulusId: stimulus('scatter') });
      for (const { state } of items.values()) {
        state.scattering = undefined;
        if (state.status === 'pending') state.finish(typeName(items.get(state.key)?.value));
      }
    } catch (err) {
      for (const { state } of items.values()) {
        state.scattering = undefined;
        if (state.status === 'pending') {
          const e = err instanceof Error ? err : new Error(String(err));
          state.setError(e, { name: e.name, message: e.message, stack: e.stack });
        }
      }
    }
  }

  /** Worker addresses to scatter to: the named ones, or every worker weighted by threads. */
  async #scatterTargets(options: ScatterOptions): Promise<Address[]> {
    const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout;
    const wanted = toList(options.workers);
    for (;;) {
      if (this.#status !== 'running') throw new ClientClosedError('client closed during scatter');
      const info = await this.schedulerInfo();
      const ws = Object.values(info.workers);
      let chosen: Address[];
      if (wanted !== undefined) {
        chosen = ws.filter((w) => wanted.some((n) => n === w.address || n === w.name || n === w.host)).map((w) => w.address);
      } else if (options.broadcast === true) {
        chosen = ws.map((w) => w.address);
      } else {
        // Round-robin by threads: a worker with 4 threads gets 4 slots, interleaved.
        chosen = [];
        const maxThreads = Math.max(0, ...ws.map((w) => w.nthreads));
        for (let t = 0; t < maxThreads; t++) for (const w of ws) if (w.nthreads > t) chosen.push(w.address);
      }
      if (chosen.length > 0) return chosen;
      if (Date.now() >= deadline) {
        throw new TimeoutError(wanted !== undefined ? `scatter: none of the workers ${wanted.join(', ')} exists` : 'scatter: no workers');
      }
      await sleep(50);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Cancel, retry

  /** Cancels the futures' tasks (and their dependents); `force` even if other clients want them. */
  async cancel(futures: Future | Future[], options: { force?: boolean } = {}): Promise<void> {
    const fs = isFuture(futures) ? [futures] : collectFutures(futures);
    if (fs.length === 0) return;
    this.#checkRunning();
    // A Future of an earlier computation of its key (cancelled or lost, then submitted again) has
    // nothing left to cancel: the key's current computation belongs to the newer Futures.
    const live = fs.filter((f) => this.#states.get(f.key) === f._state);
    // The same key submitted from now on is a new computation (#reusable), sent after the cancel.
    for (const f of live) this.#cancelRequested.add(f._state);
    // Tasks not sent yet are cancelled here, with their queued dependents: the scheduler never
    // hears of them, and the cancel does not wait for what holds them back (a scatter, maybe
    // one that waits for workers).
    const unsent = this.#cancelQueued(new Set(live.map((f) => f.key)));
    const keys = [...new Set(live.map((f) => f.key))].filter((key) => !unsent.has(key));
    const states = [...new Set(live.map((f) => f._state))].filter((st) => !unsent.has(st.key));
    if (keys.length === 0) return;
    // Marked before the rpc: the echo comes on the stream, which may deliver before the reply.
    const now = Date.now();
    if (this.#cancelEchoes.size > 10_000) {
      for (const [k, t] of this.#cancelEchoes) if (now - t.at > 10_000) this.#cancelEchoes.delete(k);
    }
    const echo = { at: now };
    for (const key of keys) this.#cancelEchoes.set(key, echo);
    // What is queued now goes before the cancel; a resubmission of a key goes after it, in a new
    // batch (held back by #cancelling until the rpc is done).
    for (const o of this.#outgoing) if (o.kind === 'graph') o.sealed = true;
    // The rpc travels on another connection than the stream, so it could reach the scheduler
    // before the tasks it cancels, find nothing to cancel, and let them run: a stream barrier first.
    const call = this.#streamBarrier().then(() => this.#call('cancel', { client: this.id, keys, force: options.force ?? false }));
    const settled = call.then(
      () => {},
      () => {},
    );
    for (const key of keys) this.#cancelling.set(key, settled);
    void settled.then(() => {
      for (const key of keys) if (this.#cancelling.get(key) === settled) this.#cancelling.delete(key);
    });
    try {
      await call;
    } catch (err) {
      for (const key of keys) if (this.#cancelEchoes.get(key) === echo) this.#cancelEchoes.delete(key);
      for (const st of states) {
        this.#cancelRequested.delete(st);
        // Submitted again meanwhile: the new future has the key now, and nothing would reach this one.
        if (this.#states.get(st.key) !== st && st.status === 'pending') {
          st.lost(`its cancel failed (${(err as Error).message}) after the key was submitted again; the newer future follows the key`);
        }
      }
      throw err;
    }
    for (const st of states) {
      if (this.#states.get(st.key) === st) this.#states.delete(st.key);
      if (st.status !== 'cancelled') st.cancel('cancelled by the client');
    }
  }

  /**
   * Cancels here, without the scheduler, the futures of `keys` whose task was not sent yet (its
   * batch is still queued: this tick's submissions, or ones held back until a scatter is stored)
   * or whose data is still being scattered: their tasks leave the queue, with every queued task
   * that depends on them and every queued graph intermediate that only they needed, and their
   * futures are cancelled, dependents too, as the scheduler would have. Returns the keys taken out.
   */
  #cancelQueued(keys: ReadonlySet<Key>): Set<Key> {
    const graphs = this.#outgoing.filter((o): o is GraphBatch => o.kind === 'graph');
    const queuedIds = new Set(graphs.map((batch) => batch.id));
    const unsent = (key: Key): boolean => {
      const st = this.#states.get(key);
      return st !== undefined && (st.scattering !== undefined || (st.queuedIn !== 0 && queuedIds.has(st.queuedIn)));
    };
    // Dropped key -> the cancelled key it depended on (itself if it was cancelled).
    const dropped = new Map<Key, Key>();
    for (const key of keys) if (unsent(key)) dropped.set(key, key);
    if (dropped.size === 0) return new Set();
    // Dependents, until nothing changes (a graph's tasks need not come in dependency order). A
    // queued copy of a task the scheduler already has (graphs resend their parts) is not dropped:
    // the scheduler cancels what depends on it.
    const withDependencies: TaskDefinition[] = [];
    for (const batch of graphs) for (const t of batch.tasks) if (t.dependencies.length > 0) withDependencies.push(t);
    for (let changed = withDependencies.length > 0; changed; ) {
      changed = false;
      for (const t of withDependencies) {
        if (dropped.has(t.key)) continue;
        const because = t.dependencies.find((d) => dropped.has(d));
        if (because === undefined || (this.#states.has(t.key) && !unsent(t.key))) continue;
        dropped.set(t.key, dropped.get(because)!);
        changed = true;
      }
    }
    // Graph intermediates that only dropped tasks needed go too; what a Future of this client or
    // a queued wanted key still needs stays, and so does what nothing needed before. Only queued
    // tasks can be such intermediates, so only they are walked (and not at all when no queued
    // task has dependencies: a map's tasks).
    if (withDependencies.length > 0) {
      const byKey = new Map<Key, TaskDefinition>();
      for (const batch of graphs) for (const t of batch.tasks) byKey.set(t.key, t);
      const roots: Key[] = graphs.flatMap((batch) => batch.keys);
      for (const k of byKey.keys()) if (this.#states.has(k)) roots.push(k);
      const closure = (skip: ReadonlyMap<Key, Key>): Set<Key> => {
        const seen = new Set<Key>();
        const stack = [...roots];
        while (stack.length > 0) {
          const k = stack.pop()!;
          if (seen.has(k) || skip.has(k)) continue;
          seen.add(k);
          for (const d of byKey.get(k)?.dependencies ?? []) stack.push(d);
        }
        return seen;
      };
      const neededAfter = closure(dropped);
      for (const k of closure(new Map())) if (byKey.has(k) && !neededAfter.has(k) && !dropped.has(k)) dropped.set(k, k);
    }
    for (const batch of graphs) {
      batch.tasks = batch.tasks.filter((t) => !dropped.has(t.key));
      batch.keys = batch.keys.filter((k) => !dropped.has(k));
    }
    this.#outgoing = this.#outgoing.filter((o) => o.kind !== 'graph' || o.tasks.length > 0 || o.keys.length > 0);
    for (const [key, because] of dropped) {
      const st = this.#states.get(key);
      if (st === undefined) continue;
      this.#states.delete(key);
      st.cancel(because === key ? 'cancelled by the client' : `its dependency ${because} was cancelled`);
      // The scatter still registers the data for this client: release it once it has.
      st.scattering?.then(() => {
        if (!this.#states.has(key)) this.#queueKeys('release', key);
      });
    }
    return new Set(dropped.keys());
  }

  /**
   * Reruns failed futures (and the failed tasks they depend on) with the scheduler's `retry`
   * op. Against a scheduler without it, the client resubmits the tasks it made itself: the
   * erred keys are released and submitted again.
   */
  async retry(futures: Future | Future[]): Promise<void> {
    this.#checkRunning();
    const fs = isFuture(futures) ? [futures] : collectFutures(futures);
    const order: FutureState[] = [];
    const seen = new Set<FutureState>();
    const visit = (st: FutureState): void => {
      if (seen.has(st) || st.status !== 'error') return;
      seen.add(st);
      for (const d of st.dependencies ?? []) visit(d);
      order.push(st); // dependencies first
    };
    for (const f of fs) visit(f._state);
    if (order.length === 0) return;
    const saved = order.map((st) => [st.error, st.wireError] as const);
    for (const st of order) {
      st.reset();
      if (this.#states.get(st.key) === undefined) this.#states.set(st.key, st);
    }
    try {
      await this.#call('retry', { client: this.id, keys: order.map((st) => st.key) });
      return;
    } catch (err) {
      const e = err as { remoteName?: string; remoteCode?: string };
      if (e.remoteName !== 'UnknownOpError' && e.remoteCode !== 'DD_ERR_UNKNOWN_OP') {
        order.forEach((st, i) => {
          if (st.status === 'pending') st.setError(saved[i]![0] ?? (err as Error), saved[i]![1]);
        });
        throw err;
      }
    }
    const resubmit = order.filter((st) => st.definition !== undefined);
    for (const st of resubmit) this.#queueKeys('release', st.key);
    for (const st of resubmit) st.queuedIn = this.#queueTask(st.definition!, st.userPriority, st.fifoTimeoutMs).id;
    this.#flush();
  }

  // ---------------------------------------------------------------------------------------------
  // The cluster

  /** The scheduler's identity: `{ id, address, workers: { [address]: {name, nthreads, memoryLimit, resources, ...} } }`. */
  async schedulerInfo(): Promise<SchedulerIdentity> {
    this.#checkRunning();
    return await this.#call<SchedulerIdentity>('identity', {});
  }

  /** The scheduler file this client connected through (`{ schedulerFile }`) or wrote, if any. */
  get schedulerFile(): string | undefined {
    return this.#schedulerFile;
  }

  /**
   * Writes the scheduler's identity (schedulerInfo(), with its `address`) to `path` as JSON, the
   * file `Client.connect({ schedulerFile })` and `dd-worker --scheduler-file` read. As in the
   * reference, a client writes at most one: SchedulerFileError when it already has one (written,
   * or connected through). The file appears whole: it is written beside `path`, then renamed.
   */
  async writeSchedulerFile(path: string): Promise<void> {
    this.#checkRunning();
    if (typeof path !== 'string' || path === '') throw new TypeError('writeSchedulerFile(path): path must be a non-empty string');
    const refuseIfSet = (): void => {
      if (this.#schedulerFile !== undefined) throw new SchedulerFileError(`this client's scheduler file is already set (${this.#schedulerFile})`);
    };
    refuseIfSet();
    const info = await this.schedulerInfo();
    // Again after the await (the client may have closed meanwhile), and claimed before writing:
    // of two calls racing, only one writes.
    this.#checkRunning();
    refuseIfSet();
    this.#schedulerFile = path;
    const partial = `${path}.${process.pid}.${randomUUID().slice(0, 8)}.tmp`;
    try {
      await writeFile(partial, `${JSON.stringify(info, null, 2)}\n`, { flag: 'wx' });
      await rename(partial, path);
    } catch (err) {
      this.#schedulerFile = undefined;
      await rm(partial, { force: true }).catch(() => {}); // the write's error is the one to report
      throw err;
    }
  }

  /** Resolves once the scheduler has at least `n` workers. */
  async waitForWorkers(n = 1, options: { timeout?: number } = {}): Promise<void> {
    const deadline = options.timeout === undefined ? Infinity : Date.now() + options.timeout;
    for (;;) {
      const info = await this.schedulerInfo();
      const count = Object.keys(info.workers).length;
      if (count >= n) return;
      if (Date.now() >= deadline) throw new TimeoutError(`waited ${options.timeout} ms for ${n} workers; have ${count}`);
      await sleep(Math.min(50, Math.max(1, deadline - Date.now())));
    }
  }

  /** `{ [workerAddress]: threads }`. */
  async nthreads(): Promise<Record<Address, number>> {
    return await this.#call('nthreads', {});
  }

  /** `{ [key]: workerAddresses }` for the futures' keys (every key when none given). */
  async whoHas(futures?: Future | Future[] | Key[]): Promise<Record<Key, Address[]>> {
    return await this.#call('who-has', keysArg(futures));
  }

  /** `{ [workerAddress]: keys }`. */
  async hasWhat(workers?: Address[]): Promise<Record<Address, Key[]>> {
    return await this.#call('has-what', workers === undefined ? {} : { workers });
  }

  /** `{ [key]: bytes }`. */
  async nbytes(futures?: Future | Future[] | Key[]): Promise<Record<Key, number>> {
    return await this.#call('nbytes', keysArg(futures));
  }

  /** `{ [workerAddress]: keys being processed }`. */
  async processing(workers?: Address[]): Promise<Record<Address, Key[]>> {
    return await this.#call('processing', workers === undefined ? {} : { workers });
  }

  /** The scheduler's transition log for the keys. */
  async story(...keysOrFutures: Array<Future | Key | Array<Future | Key>>): Promise<StoryEntry[]> {
    const keys = keysOrFutures.flat().map((k) => (isFuture(k) ? k.key : k));
    return await this.#call('story', { keys });
  }

  // Managing the cluster (scheduler management extensions; cluster-management.ts)

  /**
   * Calls `fn(...args)` on every worker, outside the task system (on the worker's main thread,
   * the Worker as `this` for a `function`): `{ [address]: result }`. Options come first:
   * `run({ workers, onError: 'raise' | 'return' | 'ignore', timeout }, fn, ...args)`.
   */
  async run<F extends AnyFn>(fn: F | ModuleFunction<F>, ...args: Parameters<F>): Promise<Record<Address, ResultOf<F>>>;
  async run<F extends AnyFn>(options: management.RunOptions, fn: F | ModuleFunction<F>, ...args: Parameters<F>): Promise<Record<Address, ResultOf<F> | RemoteError>>;
  async run(...all: unknown[]): Promise<Record<Address, unknown>> {
    this.#checkRunning();
    const withOptions = management.isRunOptions(all[0]);
    const options = withOptions ? (all[0] as management.RunOptions) : {};
    return await management.run(this, options, (withOptions ? all[1] : all[0]) as Runnable, all.slice(withOptions ? 2 : 1));
  }

  /** dd and Node versions of the scheduler, each worker and this client; `check` rejects on a mismatch. */
  async getVersions(options?: { check?: boolean }): Promise<management.Versions> {
    return await management.getVersions(this, options);
  }

  /** Where and when each finished or failed task ran (startstops per task and worker), oldest first. */
  async getTaskStream(options?: management.TaskStreamOptions): Promise<management.TaskStreamRecord[]> {
    return await management.getTaskStream(this, options);
  }

  /** Closes the workers (keys only they hold are copied elsewhere first): `{ [address]: name }`. */
  async retireWorkers(workers: string | readonly string[], options?: management.ManagementOptions): Promise<Record<Address, string>> {
    return await management.retireWorkers(this, workers, options);
  }

  /** Copies the futures' data onto `n` workers (default: all). */
  async replicate(futures: Future | readonly unknown[], options?: management.ReplicateOptions): Promise<void> {
    await management.replicate(this, futures, options);
  }

  /** Evens out the bytes of the futures' data (default: all data) across the workers. */
  async rebalance(futures?: Future | readonly unknown[], options?: management.RebalanceOptions): Promise<void> {
    await management.rebalance(this, futures, options);
  }

  /**
   * Registers a worker plugin (an object with setup/teardown/transition, sent by source, or
   * `ref(module, export)` of a class or factory) on every current and future worker; the same
   * name again replaces it. Resolves to each worker's 'OK' or RemoteError.
   */
  async registerWorkerPlugin(plugin: management.WorkerPlugin | ModuleFunction, options?: { name?: string }): Promise<management.PluginResults> {
    return await management.registerWorkerPlugin(this, plugin, options);
  }

  async unregisterWorkerPlugin(name: string): Promise<management.PluginResults> {
    return await management.unregisterWorkerPlugin(this, name);
  }

  /** Sends a module file (or a directory) to every current and future worker, importable by bare name (`ref('mod.js', 'fn')`). */
  async uploadFile(filePath: string): Promise<Address[]> {
    return await management.uploadFile(this, filePath);
  }

  /**
   * Restarts every worker: fresh processes via their nannies (dd-worker) or LocalCluster, all
   * tasks and data cleared. Every future of this client (and of other clients) becomes cancelled
   * with a CancelledError saying so. Resolves once the workers are back (`timeout`, default
   * 60 s); rejects if some could not be restarted. Workers run without a nanny keep running,
   * emptied (listed in `notRestarted`).
   */
  async restart(options: { timeout?: number } = {}): Promise<{ workers: Address[]; notRestarted: Address[] }> {
    const timeoutMs = options.timeout ?? 60_000;
    const reason = 'the cluster was restarted (client.restart()); its tasks and data are gone';
    this.#checkRunning();
    const before = [...this.#states.keys()];
    // The restart rpc must see every task submitted before it, also a large update-graph still
    // being read from the stream connection when the rpc's own connection delivers (seen under
    // load: a map's last slice arrived after the restart and ran, wanted by a client that had
    // already forgotten it).
    await this.#streamBarrier();
    const reply = await this.#call<{ workers: Address[]; notRestarted: Address[] }>('restart', { timeoutMs, reason }, { timeout: timeoutMs + 10_000 });
    // The scheduler's cancelled-keys may still be on its way (another connection): do not wait.
    for (const key of before) {
      const st = this.#states.get(key);
      if (st === undefined) continue;
      this.#states.delete(key);
      // Its cancelled-keys, if still on the way, must not cancel a resubmission of the key.
      this.#cancelEchoes.set(key, { at: Date.now() });
      st.cancel(reason);
    }
    return { workers: reply.workers ?? [], notRestarted: reply.notRestarted ?? [] };
  }

  /** Closes every worker and the scheduler, then this client. */
  async shutdown(): Promise<void> {
    await management.shutdown(this);
  }

  /**
   * An rpc to the scheduler, after everything queued on the stream (flushed first) and, while the
   * client reconnects, on the new connection (on the lost one it would fail with CommClosedError).
   */
  async #call<T>(op: string, args: Record<string, unknown>, options?: CallOptions): Promise<T> {
    if (this.#reconnecting !== undefined) await this.#reconnecting;
    this.#checkRunning();
    this.#flush();
    return await this.#link.call<T>(op, args, options);
  }

  /** @internal rpc to the scheduler after flushing the stream (extensions: cluster-data.ts). */
  _rpc<T = unknown>(op: string, args: Record<string, unknown>): Promise<T> {
    return this.#call<T>(op, args);
  }

  /** @internal a message on the stream, after everything queued before it. */
  _sendStream(msg: { op: string; [field: string]: unknown }): void {
    this.#checkRunning();
    this.#flush();
    this.#link.send(msg as unknown as ClientToSchedulerMsg);
  }

  // ---------------------------------------------------------------------------------------------
  // Datasets, metadata, events (scheduler extensions; cluster-data.ts)

  #datasets: clusterData.Datasets | undefined;

  /** The published datasets as an async mapping: get/set/delete/has/keys/list, `for await`. */
  get datasets(): clusterData.Datasets {
    return (this.#datasets ??= new clusterData.Datasets(this));
  }

  /** Publishes named values (Futures inside are kept alive on the cluster until unpublished). */
  async publishDataset(datasets: Record<string, unknown>, options?: clusterData.PublishOptions): Promise<void> {
    await clusterData.publishDataset(this, datasets, options);
  }

  /** Names of the published datasets. */
  async listDatasets(): Promise<string[]> {
    return await clusterData.listDatasets(this);
  }

  /** A published dataset, with new Futures of this client for its keys (one Future alone resolves to its value). */
  async getDataset<T = unknown>(name: string): Promise<T> {
    return (await clusterData.getDataset(this, name)) as T;
  }

  async unpublishDataset(name: string): Promise<void> {
    await clusterData.unpublishDataset(this, name);
  }

  /** Stores a value in the scheduler's metadata at a key path (`'a'` or `['a', 'b']`). */
  async setMetadata(path: string | readonly string[], value: unknown): Promise<void> {
    await clusterData.setMetadata(this, path, value);
  }

  /** The metadata at a key path; rejects when there is none, unless a default is given. */
  async getMetadata<T = unknown>(path: string | readonly string[], ...defaultValue: [] | [T]): Promise<T> {
    return (await clusterData.getMetadata(this, path, ...defaultValue)) as T;
  }

  /** Logs a structured event (topic or topics); returns at once. */
  logEvent(topic: string | readonly string[], msg: unknown): void {
    clusterData.logEvent(this, topic, msg);
  }

  /** Events of a topic as `[timeInSeconds, msg][]`, or every topic's when none is given. */
  async getEvents(topic: string): Promise<Array<[number, unknown]>>;
  async getEvents(): Promise<Record<string, Array<[number, unknown]>>>;
  async getEvents(topic?: string): Promise<unknown> {
    return await clusterData.getEvents(this, topic);
  }

  // ---------------------------------------------------------------------------------------------
  // Closing

  /** Keeps `future` (its task) alive until it is done, even if every other handle is dropped. */
  _fireAndForget(future: Future): void {
    this.#checkRunning();
    if (future.done()) return;
    // The scheduler's fire-and-forget client wants the key until the task is done, even if
    // this client goes away; the local hold covers schedulers without that client.
    this.#flush();
    this.#link.send({ op: 'client-desires-keys', client: FIRE_AND_FORGET_CLIENT, keys: [future.key], stimulusId: stimulus('fire-and-forget') });
    const hold = this.#makeFuture(future.key, future._state);
    this.#forgotten.add(hold);
    hold.addDoneCallback(() => {
      if (this.#forgotten.delete(hold)) hold.release();
    });
  }

  /**
   * Flushes what is queued, tells the scheduler goodbye, closes connections, and stops the
   * LocalCluster connect() started. Futures become cancelled. Idempotent.
   */
  close(): Promise<void> {
    this.#closing ??= this.#close();
    return this.#closing;
  }

  async #close(): Promise<void> {
    const wasRunning = this.#status === 'running';
    this.#status = 'closing';
    this.#reconnectAbort?.abort();
    unregisterClient(this);
    if (this.#heartbeat !== undefined) clearInterval(this.#heartbeat);
    if (wasRunning && this.#link !== undefined) {
      this.#flush();
      try {
        this.#link.send({ op: 'close-client', client: this.id });
      } catch {
        // the stream is gone already
      }
    }
    this.#status = 'closed';
    // A cancel or restart waiting for its barrier goes on to its rpc, which then fails: closed.
    for (const resolve of this.#barriers.values()) resolve();
    this.#barriers.clear();
    for (const st of this.#states.values()) if (st.status === 'pending') st.cancel('the client closed');
    this.#states.clear();
    this.#forgotten.clear();
    try {
      await this.#link?.close();
    } finally {
      await this.#cluster?.close();
    }
  }

  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }

  toString(): string {
    return `<Client ${this.id}: ${this.#status}, scheduler ${this.#publicAddress ?? this.#link?.address ?? '?'}>`;
  }
}

const EMPTY: ClientOptions = Object.freeze({});

/**
 * How many times in a row a result is waited for to be computed again, after fetches that found
 * no worker holding it, before the fetch gives up with FutureLostError (a task whose workers keep
 * dying fails with KilledWorker on the scheduler's side first).
 */
const MAX_GATHER_RESCHEDULES = 5;

/** The type of `gather(x)`: x with every Future<T> replaced by T. */
export type Gathered<T> =
  T extends Future<infer V>
    ? V
    : T extends readonly unknown[]
      ? { [K in keyof T]: Gathered<T[K]> }
      : T extends Record<string, unknown>
        ? { [K in keyof T]: Gathered<T[K]> }
        : T;

function keysArg(futures: Future | Future[] | Key[] | undefined): Record<string, unknown> {
  if (futures === undefined) return {};
  const list = isFuture(futures) ? [futures] : futures;
  return { keys: [...new Set(list.map((f) => (typeof f === 'string' ? f : f.key)))] };
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

export { GatherError };

/** A key its holder could not send (GetDataReply.unsendable): gathering it fails with the reason. */
class Unsendable {
  constructor(readonly error: WireError) {}
}
