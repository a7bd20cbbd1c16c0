// Runs bulk slices on a thread of their own (bulk-thread.ts), so a slice in progress never holds
// the worker's event loop: online jobs are picked and scored on the other core meanwhile. In one
// process the OnlineFirst gate keeps a slice from starting while online work is in hand; the
// thread's nice value (BULK_THREAD_NICE, 0 by default) can also put online work first across
// processes, at the price of starving bulk behind any other busy process on the host.
// Each version is opened in the thread from the source the main thread opened it from, once, and
// dropped there when the main thread's copy closes. A thread that dies fails the slices in flight
// (the chunk is retried by BullMQ) and is started again on the next slice.
import { Worker } from 'node:worker_threads';
import type { SignatureRecord } from '../shared/model-signature.ts';
import type { LogSink } from '../shared/logger.ts';
import type { ModelVersion, VersionSource } from './model-version.ts';

export type RunnerSettings = {
  /** The thread's nice value (0 leaves it at the worker's own). */
  nice: number;
};

export type RunnerRequest =
  | { type: 'open'; key: string; source: VersionSource }
  | { type: 'drop'; key: string }
  | { type: 'scoreEncoded'; id: number; key: string; features: Float32Array; rows: number }
  | { type: 'run'; id: number; key: string; records: readonly SignatureRecord[] };

export type RunnerReply =
  | { id: number; ok: true; probabilities?: Float32Array; outputs?: Record<string, unknown>[] }
  | { id: number; ok: false; name: string; message: string };

/** How a bulk slice is scored: the model's own methods, run on the bulk thread. */
export interface SliceRunner {
  scoreEncoded(model: ModelVersion, features: Float32Array, rows: number): Promise<Float32Array>;
  run(model: ModelVersion, records: readonly SignatureRecord[]): Promise<Record<string, unknown>[]>;
}

type Pending = { resolve: (reply: RunnerReply & { ok: true }) => void; reject: (error: Error) => void };

export class BulkRunner implements SliceRunner {
  readonly #settings: RunnerSettings;
  readonly #logger: LogSink;
  #thread: Worker | undefined;
  /** Versions the current thread was sent, by key. */
  #sent = new Set<string>();
  readonly #keys = new WeakMap<ModelVersion, string>();
  readonly #pending = new Map<number, Pending>();
  #nextId = 0;
  #nextKey = 0;
  #closed = false;

  constructor(settings: RunnerSettings, logger: LogSink) {
    this.#settings = settings;
    this.#logger = logger;
  }

  async scoreEncoded(model: ModelVersion, features: Float32Array, rows: number): Promise<Float32Array> {
    const reply = await this.#call((id, key) => ({ type: 'scoreEncoded', id, key, features, rows }), model, [features.buffer as ArrayBuffer]);
    return reply.probabilities!;
  }

  async run(model: ModelVersion, records: readonly SignatureRecord[]): Promise<Record<string, unknown>[]> {
    const reply = await this.#call((id, key) => ({ type: 'run', id, key, records }), model, []);
    return reply.outputs!;
  }

  /** Opens `model` on the thread ahead of its first slice (once; a closed model is not sent). */
  prepare(model: ModelVersion): void {
    if (this.#closed || model.retired) return;
    this.#send(this.#running(), model);
  }

  /** Versions the thread holds now. */
  get versionsHeld(): number {
    return this.#sent.size;
  }

  /** Stops the thread; slices still in flight fail. */
  async close(): Promise<void> {
    this.#closed = true;
    await this.#thread?.terminate();
  }

  #call(request: (id: number, key: string) => RunnerRequest, model: ModelVersion, transfer: ArrayBuffer[]): Promise<RunnerReply & { ok: true }> {
    if (this.#closed) return Promise.reject(new Error('the bulk runner is closed'));
    const thread = this.#running();
    const key = this.#send(thread, model);
    const id = this.#nextId++;
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      thread.postMessage(request(id, key), transfer);
    });
  }

  /** The version's key in the thread, sending it there first when this thread has not seen it. */
  #send(thread: Worker, model: ModelVersion): string {
    let key = this.#keys.get(model);
    if (key === undefined) {
      const k = `${model.name}/${model.version}#${this.#nextKey++}`;
      key = k;
      this.#keys.set(model, k);
      // Closed once the repository retired it and every lease (every chunk scoring with it) is back.
      void model.closed.then(() => {
        if (this.#sent.delete(k)) this.#thread?.postMessage({ type: 'drop', key: k } satisfies RunnerRequest);
      });
    }
    if (!this.#sent.has(key)) {
      thread.postMessage({ type: 'open', key, source: model.source } satisfies RunnerRequest);
      this.#sent.add(key);
    }
    return key;
  }

  #running(): Worker {
    if (this.#thread) return this.#thread;
    const thread = new Worker(new URL('./bulk-thread.ts', import.meta.url), { workerData: this.#settings });
    // The thread never keeps the process alive: the chunk in hand does, through BullMQ.
    thread.unref();
    thread.on('message', (reply: RunnerReply) => {
      const pending = this.#pending.get(reply.id);
      if (!pending) return;
      this.#pending.delete(reply.id);
      if (reply.ok) pending.resolve(reply);
      else pending.reject(Object.assign(new Error(reply.message), { name: reply.name }));
    });
    const lost = (why: Error) => {
      if (this.#thread !== thread) return;
      this.#thread = undefined;
      this.#sent = new Set();
      if (!this.#closed) this.#logger.error({ err: why }, 'bulk thread stopped; slices in flight fail and their chunks are retried');
      for (const pending of this.#pending.values()) pending.reject(why);
      this.#pending.clear();
    };
    thread.on('error', lost);
    thread.on('exit', (code) => lost(new Error(`the bulk thread exited (code ${code})`)));
    this.#thread = thread;
    return thread;
  }
}
