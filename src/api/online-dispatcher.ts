// Request/reply over BullMQ for online calls.
//
// Calls that reach this api process in one event-loop turn share one queue job, so BullMQ's
// bookkeeping (~35 Redis commands a job) is paid once per turn, not once per call; a lone
// call is flushed on the next turn and never waits for company.
//
// Replies come back on this process's own pub/sub channel: a worker PUBLISHes each batch's
// replies once per api process it serves. Each api reads only its own replies, so its cost
// does not grow with the number of api processes (a shared QueueEvents stream would make
// every api read every completion), and nothing depends on the job still existing when the
// reply arrives, so removeOnComplete cannot race the waiter.
import { randomUUID } from 'node:crypto';
import type { Queue } from 'bullmq';
import type { Redis } from 'ioredis';
import { replyChannel } from '../shared/keys.ts';
import { QUEUES, ReplyMessageSchema, type CallTimings, type OnlineCall, type PredictJob } from '../shared/queues.ts';
import { OverloadedError, TimeoutError, UnavailableError } from '../shared/errors.ts';
import { isRedisReady } from '../shared/redis.ts';
import type { FraudRecord } from '../shared/schemas/record.ts';
import type { Decision } from '../shared/schemas/prediction.ts';
import type { LogSink } from '../shared/logger.ts';
import type { Tracer } from '@opentelemetry/api';
import { injectSpan } from '../shared/trace-carrier.ts';
import { endCallSpanError, endCallSpanOk, startCallSpan } from './call-spans.ts';

export type CallResult = {
  probabilities: number[];
  decisions: Decision[];
  modelVersion: string;
  timings: CallTimings;
};

type Pending = {
  resolve: (result: CallResult) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
};

export type OnlineDispatcherOptions = {
  queue: Queue;
  /** Connection the queue uses; checked so a call fails fast with 503 while Redis is away. */
  producer: Redis;
  /** A connection of its own: a subscribed ioredis connection can do nothing else. */
  subscriber: Redis;
  prefix: string;
  /** Records per queue job; calls of one turn past it are split across jobs. */
  maxRecordsPerJob: number;
  /** Waiting online jobs past which calls are refused with 429. */
  maxWaiting: number;
  logger: LogSink;
  /** Set when spans are exported; each call then gets a span and carries its context. */
  tracer?: Tracer | undefined;
};

/** How often the queue depth behind the 429 bound is sampled: a Redis call per request would cost more than it saves. */
const DEPTH_SAMPLE_INTERVAL_MS = 200;

export class OnlineDispatcher {
  readonly apiId = randomUUID();
  readonly #options: OnlineDispatcherOptions;
  readonly #channel: string;
  readonly #pending = new Map<string, Pending>();
  #turn: OnlineCall[] = [];
  #nextCallId = 0;
  #waiting = 0;
  #jobsEnqueued = 0;
  #recordsEnqueued = 0;
  #depthTimer: NodeJS.Timeout | undefined;
  #closed = false;

  constructor(options: OnlineDispatcherOptions) {
    this.#options = options;
    this.#channel = replyChannel(options.prefix, this.apiId);
  }

  /** Subscribes to this api's reply channel and starts sampling the queue depth. */
  async start(): Promise<void> {
    const { subscriber } = this.#options;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.#channel) this.#onReplies(message);
    });
    // Resolves once subscribed; while Redis is away ioredis re-subscribes when it returns.
    void subscriber.subscribe(this.#channel).catch((err: unknown) => {
      this.#options.logger.warn({ err }, 'reply channel subscription failed; ioredis will retry');
    });
    this.#depthTimer = setInterval(() => void this.#sampleDepth(), DEPTH_SAMPLE_INTERVAL_MS);
    this.#depthTimer.unref();
  }

  get pendingCalls(): number {
    return this.#pending.size;
  }

  /** Records per queue job this api has enqueued (1 before the first): turns a job count into records. */
  get meanRecordsPerJob(): number {
    return this.#jobsEnqueued === 0 ? 1 : this.#recordsEnqueued / this.#jobsEnqueued;
  }

  /**
   * Scores records through the queue. Rejects with UnavailableError (Redis away),
   * OverloadedError (queue past its bound) or TimeoutError (no reply within timeoutMs).
   */
  submit(records: FraudRecord[], timeoutMs: number): Promise<CallResult> {
    if (this.#closed || !isRedisReady(this.#options.producer)) return Promise.reject(new UnavailableError());
    if (this.#waiting > this.#options.maxWaiting) return Promise.reject(new OverloadedError(1));

    const callId = String(this.#nextCallId++);
    const span = this.#options.tracer ? startCallSpan(this.#options.tracer, QUEUES.predict.name, records.length) : undefined;
    return new Promise<CallResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#pending.delete(callId);
        const error = new TimeoutError(timeoutMs);
        if (span) endCallSpanError(span, error);
        reject(error);
      }, timeoutMs);
      this.#pending.set(callId, {
        resolve: span ? (result) => (endCallSpanOk(span, result.timings, result.modelVersion), resolve(result)) : resolve,
        reject: span ? (error) => (endCallSpanError(span, error), reject(error)) : reject,
        timer,
      });
      if (this.#turn.length === 0) setImmediate(() => void this.#flush());
      const call: OnlineCall = { call_id: callId, deadline: Date.now() + timeoutMs, records };
      const carrier = span && injectSpan(span);
      if (carrier) call.trace = carrier;
      this.#turn.push(call);
    });
  }

  async #flush(): Promise<void> {
    const calls = this.#turn;
    this.#turn = [];
    const jobs: OnlineCall[][] = [];
    let current: OnlineCall[] = [];
    let records = 0;
    for (const call of calls) {
      if (current.length > 0 && records + call.records.length > this.#options.maxRecordsPerJob) {
        jobs.push(current);
        current = [];
        records = 0;
      }
      current.push(call);
      records += call.records.length;
    }
    jobs.push(current);

    const { queue } = this.#options;
    const now = Date.now();
    const batch = jobs.map((jobCalls) => {
      const data: PredictJob = { reply_to: this.#channel, enqueued_at: now, calls: jobCalls };
      return { name: QUEUES.predict.jobName, data, opts: QUEUES.predict.jobOptions };
    });
    try {
      if (batch.length === 1) await queue.add(batch[0]!.name, batch[0]!.data, batch[0]!.opts);
      else await queue.addBulk(batch);
      this.#waiting += batch.length;
      this.#jobsEnqueued += batch.length;
      for (const call of calls) this.#recordsEnqueued += call.records.length;
    } catch (err) {
      this.#options.logger.warn({ err }, 'enqueue failed');
      for (const call of calls) this.#settle(call.call_id, (p) => p.reject(new UnavailableError()));
    }
  }

  #onReplies(message: string): void {
    let parsed;
    try {
      parsed = ReplyMessageSchema.parse(JSON.parse(message));
    } catch (err) {
      this.#options.logger.error({ err }, 'malformed reply message');
      return;
    }
    for (const reply of parsed.replies) {
      this.#settle(reply.call_id, (p) => {
        if (reply.status === 'ok') {
          p.resolve({
            probabilities: reply.probabilities,
            decisions: reply.decisions,
            modelVersion: reply.model_version,
            timings: reply.timings,
          });
        } else {
          p.reject(new Error(`worker could not score the call: ${reply.message}`));
        }
      });
    }
  }

  /** Settles a call once; a reply that comes after its timeout finds nothing to settle. */
  #settle(callId: string, settle: (pending: Pending) => void): void {
    const pending = this.#pending.get(callId);
    if (!pending) return;
    this.#pending.delete(callId);
    clearTimeout(pending.timer);
    settle(pending);
  }

  async #sampleDepth(): Promise<void> {
    if (!isRedisReady(this.#options.producer)) return;
    try {
      this.#waiting = await this.#options.queue.getWaitingCount();
    } catch {
      // Redis went away between the check and the call; the next sample tries again.
    }
  }

  /** Stops taking calls; calls in flight keep waiting for their replies until their timeouts. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#depthTimer);
    // Let the callers still waiting hear their replies before unsubscribing.
    const deadline = Date.now() + 30_000;
    while (this.#pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.#options.subscriber.unsubscribe(this.#channel).catch(() => undefined);
  }
}
