// Entry file of an executor thread (runs as dist/executor-thread.js). Runs the pool's tasks one
// at a time with the shared TaskRunner (its function cache lives as long as the thread), and
// posts each outcome back. Results are structured-cloned; binary buffers that
// the result owns outright are transferred instead of copied.

import { parentPort, workerData } from 'node:worker_threads';
import { TaskRunner } from './task-runner';
import { wireError } from './task-runner';
import { setThreadTaskWorker, taskWorkerHandle } from './task-context';
import type { ThreadLogEvent, ThreadWorkerInfo } from './executor-messages';
import type { ThreadCollectRequest, ThreadRequest, ThreadResponse, ThreadSettings } from './executor-messages';
import { GarbageDebt } from './garbage';

const port = parentPort;
if (!port) throw new Error('executor-thread.js must run in a worker thread');

const settings = workerData as ThreadSettings;
const runner = new TaskRunner({ cwd: settings.cwd, ...(settings.uploadDirectory !== undefined ? { uploadDirectory: settings.uploadDirectory } : {}) });
// This thread's own heap holds the dependency copies of finished tasks, and results it had to
// copy rather than transfer, until its own collector runs (garbage.ts).
const garbage = settings.garbage && new GarbageDebt(settings.garbage);

// Jobs run one at a time in arrival order: the pool may post the next ones before this one ends
// (its queue depth), and an async task must not overlap them.
const queue: ThreadRequest[] = [];
let running = false;

port.on('message', (req: ThreadRequest | ThreadRequest[] | ThreadCollectRequest) => {
  if ('collect' in req) {
    garbage?.collectIfAbove();
    return;
  }
  const info = (req as Partial<ThreadWorkerInfo>).workerInfo;
  if (info !== undefined) {
    // getWorker() in this thread's tasks; their events go to the pool, which hands them to the worker.
    setThreadTaskWorker(taskWorkerHandle(info.address, info.name, (topic, msg) => {
      const event: ThreadLogEvent = { logEvent: { topic, msg } };
      port.postMessage(event);
    }));
    return;
  }
  // The pool posts the jobs it dispatched in one tick together, as an array.
  if (Array.isArray(req)) queue.push(...req);
  else queue.push(req);
  if (!running) void drain();
});

async function drain(): Promise<void> {
  running = true;
  try {
    for (let req = queue.shift(); req !== undefined; req = queue.shift()) {
      await handle(req);
      if (garbage !== undefined && req.depBytes !== undefined) {
        req.deps = new Map(); // unreachable now, so the collection can free them
        garbage.add(req.depBytes);
      }
    }
  } finally {
    running = false;
  }
}

async function handle(req: ThreadRequest): Promise<void> {
  if (req.bufferKeys) {
    // Structured clone turns Buffers into plain Uint8Arrays: give tasks their Buffers back.
    for (const k of req.bufferKeys) {
      const u = req.deps.get(k) as Uint8Array;
      req.deps.set(k, Buffer.from(u.buffer, u.byteOffset, u.byteLength));
    }
  }
  const outcome = await runner.run(req.spec, req.deps);
  let res: ThreadResponse;
  if (outcome.ok) {
    res = { ...outcome, id: req.id, isBuffer: Buffer.isBuffer(outcome.value) };
    const transfer = transferables(outcome.value);
    try {
      port!.postMessage(res, transfer);
      return;
    } catch {
      try {
        port!.postMessage(res); // e.g. an untransferable buffer: copy instead
        return;
      } catch (err) {
        const e = wireError(err);
        res = {
          id: req.id,
          ok: false,
          error: {
            ...e,
            name: 'DataCloneError',
            message:
              `the result of the task cannot leave its executor thread (${e.message}); return plain data ` +
              `(objects, arrays, strings, numbers, typed arrays, Map, Set, Date), or run the worker with executor 'inline'`,
          },
          start: outcome.start,
          stop: outcome.stop,
        };
      }
    }
  } else {
    res = { ...outcome, id: req.id };
  }
  port!.postMessage(res);
}

/** ArrayBuffers that views in the result own entirely (top level and one level down). */
function transferables(value: unknown): ArrayBuffer[] {
  const out: ArrayBuffer[] = [];
  const seen = new Set<ArrayBuffer>();
  const visit = (v: unknown): void => {
    if (typeof v !== 'object' || v === null) return;
    if (ArrayBuffer.isView(v)) {
      const b = v.buffer;
      if (b instanceof ArrayBuffer && v.byteOffset === 0 && v.byteLength === b.byteLength && b.byteLength >= 4096 && !seen.has(b)) {
        seen.add(b);
        out.push(b);
      }
    }
  };
  visit(value);
  if (Array.isArray(value)) for (let i = 0; i < Math.min(value.length, 1000); i++) visit(value[i]);
  else if (typeof value === 'object' && value !== null && Object.getPrototypeOf(value) === Object.prototype) {
    let n = 0;
    for (const k in value) {
      visit((value as Record<string, unknown>)[k]);
      if (++n >= 1000) break;
    }
  }
  return out;
}
