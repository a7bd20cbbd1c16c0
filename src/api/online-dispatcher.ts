// Request/reply over BullMQ for online calls.
//
// Calls that reach this api process in one event-loop turn share one queue job, so BullMQ's
// bookkeeping (~35 Redis commands a job) is paid once per turn, not once per call; a lone
// call is flushed on the next turn and never waits for company.
//
// Replies come back on this process's own pub/sub channel (reply-channel.ts): a worker
// PUBLISHes each batch's replies once per api process it serves. Each api reads only its own
// replies, so its cost does not grow with the number of api processes (a shared QueueEvents
// stream would make every api read every completion), and nothing depends on the job still
// existing when the reply arrives, so removeOnComplete cannot race the waiter.
//
// Admission: a call is refused at once (429) when the records already waiting, at the rate the
// workers were measured to score while busy, would not be done within the call's own timeout.
import { randomUUID } from 'node:crypto';
import type { Tracer } from '@opentelemetry/api';
import { recordsScoredKey } from '../shared/keys.ts';
import {
  callRows,
  predictQueue,
  type CallTimings,
  type OnlineCall,
  type OnlineReply,
  type PredictJob,
  type PredictOutcome,
} from '../shared/queues.ts';
import { createProducer, enqueue, enqueueBulk, type Producer, type Sharding } from '../shared/queue-clients.ts';
import { replyChannel, subscribeReplies } from '../shared/reply-channel.ts';
import {
  InsufficientStorageError,
  ModelError,
  ModelNotFoundError,
  ModelUnavailableError,
  OverloadedError,
  TimeoutError,
  UnavailableError,
} from '../shared/errors.ts';
import { isRedisOutOfMemory, isRedisReady, type RedisClient } from '../shared/redis.ts';
import { busyScoringRate, predictedWaitMs, trimSamples, windowScoringRate, type RateSample } from '../shared/scoring-rate.ts';
import type { LogSink } from '../shared/logger.ts';
import { injectSpan } from '../shared/trace-carrier.ts';
import { packColumns, type Columns } from '../shared/tensor-columns.ts';
import { endCallSpanError, endCallSpanOk, startCallSpan } from './call-spans.ts';

/** What a call got back: per record, each output by name, and the version that scored it. */
export type CallResult = {
  modelName: string;
  /** The version that scored the call, as replies name it (the manifest's display version, else the number). */
  modelVersion: string;
  timings: CallTimings;
  outputs: Record<string, unknown>[];
};

export type PredictProducer = Producer<PredictJob, PredictOutcome, 'predict'>;

type Pending = {
  resolve: (result: CallResult) => void;
  reject: (error: Error) => void;
  timer: NodeJS.Timeout;
  records: number;
  /** The depth sample current when its job was enqueued, once it is. */
  enqueuedIn?: number;
  /** Stops listening to the caller's signal. */
  release?: () => void;
};

export type OnlineDispatcherOptions = {
  /** Connection the queues use; checked so a call fails fast with 503 while Redis is away. */
  redis: RedisClient;
  /**
   * Shards of every online queue (ONLINE_QUEUE_SHARDS) and the one this process sends to, picked
   * at start: a fleet of api processes spreads over the shards, while every worker drains them all.
   */
  sharding: Sharding;
  /** A connection of its own: a subscribed ioredis connection can do nothing else. */
  subscriber: RedisClient;
  prefix: string;
  /** Records per queue job; calls of one turn past it are split across jobs. */
  maxRecordsPerJob: number;
  /** Waiting online jobs past which calls are refused with 429, whatever the predicted wait. */
  maxWaiting: number;
  /** SHUTDOWN_TIMEOUT_MS: how long close() waits for the replies of calls in flight. */
  drainTimeoutMs: number;
  logger: LogSink;
  /** OpenTelemetry's no-op tracer when spans are not exported. */
  tracer: Tracer;
};

/** How often queue depth and scoring rate are sampled: a Redis call per request would cost more than it saves. */
export const ADMISSION_SAMPLE_INTERVAL_MS = 200;
/** The scoring rate behind admission is measured over this window: short, so a frozen worker shows within seconds. */
const RATE_WINDOW_MS = 3000;
/** Busy time the window must hold before its rate is trusted: one slow batch is not a stalled worker. */
const MIN_BUSY_MS = 1000;
/**
 * The last moments' plain rate (idle time included, so never above what the workers can do),
 * taken when higher: once a stalled worker scores again its callers are admitted at once rather
 * than when its stall has left the window. Refusing everyone would otherwise keep the busy rate
 * at zero: nothing admitted, nothing scored.
 */
const RECENT_WINDOW_MS = 2 * ADMISSION_SAMPLE_INTERVAL_MS;
/** Retry-After when nothing is being scored at all: the wait cannot be predicted, only bounded. */
const MAX_RETRY_AFTER_S = 30;

export class OnlineDispatcher {
  readonly apiId = randomUUID();
  readonly #options: OnlineDispatcherOptions;
  readonly #channel: string;
  readonly #scoredKey: string;
  readonly #pending = new Map<string, Pending>();
  readonly #rateSamples: RateSample[] = [];
  readonly #producers = new Map<string, PredictProducer>();
  readonly #producerListeners: ((producer: PredictProducer) => void)[] = [];
  /** This turn's calls by queue name: a queue job never mixes model versions. */
  #turn = new Map<string, OnlineCall[]>();
  #turnCalls = 0;
  #nextCallId = 0;
  /** Jobs waiting in every queue at the last sample. */
  #sampledWaitingJobs = 0;
  /**
   * Jobs this api enqueued since that sample, and their records not yet answered: counted at
   * once, as they are. A call that timed out still counts: its job may still wait.
   */
  #jobsSinceSample = 0;
  #recordsSinceSample = 0;
  /** Numbers the depth samples, so a reply knows whether its records are among those since the last one. */
  #sampleNumber = 0;
  #recordsInFlight = 0;
  #ratePerSecond: number | undefined;
  /** Jobs and records enqueued since the last sample: the mean of the recent jobs, not of the process's life. */
  #jobsEnqueued = 0;
  #recordsEnqueued = 0;
  #meanRecordsPerJob = 1;
  #sampleTimer: NodeJS.Timeout | undefined;
  #unsubscribe: (() => Promise<void>) | undefined;
  #closed = false;

  constructor(options: OnlineDispatcherOptions) {
    this.#options = options;
    this.#channel = replyChannel(options.prefix, this.apiId);
    this.#scoredKey = recordsScoredKey(options.prefix);
  }

  /** Subscribes to this api's reply channel and starts sampling queue depth and scoring rate. */
  start(): void {
    this.#unsubscribe = subscribeReplies(this.#options.subscriber, this.#channel, (reply) => this.#onReply(reply), this.#options.logger);
    this.#sampleTimer = setInterval(() => void this.#sample(), ADMISSION_SAMPLE_INTERVAL_MS);
    this.#sampleTimer.unref();
  }

  get pendingCalls(): number {
    return this.#pending.size;
  }

  /** Records per queue job this api enqueued over the last sample interval that had any (1 before the first): turns a job count into records. */
  get meanRecordsPerJob(): number {
    return this.#meanRecordsPerJob;
  }

  /**
   * Records waiting to be scored as this api sees them: its own calls not yet answered, or the
   * queue's waiting jobs in records when other apis have put more there.
   */
  get recordsWaiting(): number {
    // This api's jobs enqueued since the sample count as the records they hold. Counted as jobs ×
    // the last mean instead, a few one-record calls after a burst of 1000-record jobs read as
    // thousands of records, and callers of an idle service were refused for them.
    return Math.max(this.#recordsInFlight, this.#sampledWaitingJobs * this.meanRecordsPerJob + this.#recordsSinceSample);
  }

  /** Records per second the workers scored while work was waiting; undefined until measured. */
  get ratePerSecond(): number | undefined {
    return this.#ratePerSecond;
  }

  /** The producer of one model version's online queue, made on first use and kept. */
  producer(model: string, version: number): PredictProducer {
    // Keyed by the version's catalog name (the metrics' queue label); its shards are one producer.
    const definition = predictQueue(model, version);
    let producer = this.#producers.get(definition.name);
    if (!producer) {
      producer = createProducer(definition, this.#options.redis, this.#options.prefix, this.#options.sharding);
      for (const queue of producer.shards) queue.on('error', (err) => this.#options.logger.debug({ err, queue: queue.name }, 'queue error'));
      this.#producers.set(definition.name, producer);
      for (const listener of this.#producerListeners) listener(producer);
    }
    return producer;
  }

  /** Calls `listener` with every online producer made from now on (the admin board shows their queues). */
  onProducer(listener: (producer: PredictProducer) => void): void {
    this.#producerListeners.push(listener);
  }

  /** Every online producer made so far. */
  get producers(): PredictProducer[] {
    return [...this.#producers.values()];
  }

  /**
   * Scores records of model `model` version `version` (already resolved and validated for it)
   * through that version's queue. Rejects with UnavailableError (Redis away), OverloadedError
   * (queue past its bound, or its predicted wait past timeoutMs), ModelError (the model failed on
   * them), ModelNotFoundError / ModelUnavailableError (the version left the worker after the call
   * was queued) or TimeoutError (no reply within timeoutMs).
   *
   * When `signal` aborts (the caller hung up or cancelled), the call rejects with the signal's
   * reason at once; a call not yet sent (still in this turn) is withdrawn and never queued. One
   * already queued shares its job with other calls, so it is scored and its reply dropped.
   *
   * `shadow`: a version of the same model the worker also scores these records with, after this
   * call's reply has gone (routing.json's shadow); it costs the caller nothing here.
   *
   * `input`: the records, or (the protocol paths) the same inputs as named columns, which travel
   * as they are (tensor-columns.ts).
   */
  submit(
    model: string,
    version: number,
    input: Record<string, unknown>[] | Columns,
    timeoutMs: number,
    { signal, shadow }: { signal?: AbortSignal; shadow?: number } = {},
  ): Promise<CallResult> {
    if (signal?.aborted) return Promise.reject(signal.reason as Error);
    if (this.#closed || !isRedisReady(this.#options.redis)) return Promise.reject(new UnavailableError());
    const refusal = this.#admit(timeoutMs);
    if (refusal) return Promise.reject(refusal);

    const queueName = this.producer(model, version).definition.name;
    const callId = String(this.#nextCallId++);
    const rows = Array.isArray(input) ? input.length : input.rows;
    const span = startCallSpan(this.#options.tracer, queueName, rows, model);
    this.#recordsInFlight += rows;
    return new Promise<CallResult>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#settle(callId, (p) => p.reject(new TimeoutError(timeoutMs)));
      }, timeoutMs);
      const pending: Pending = {
        resolve: (result) => (endCallSpanOk(span, result.timings, result.modelVersion), resolve(result)),
        reject: (error) => (endCallSpanError(span, error), reject(error)),
        timer,
        records: rows,
      };
      this.#pending.set(callId, pending);
      if (this.#turnCalls === 0) setImmediate(() => void this.#flush());
      const call: OnlineCall = { call_id: callId, deadline: Date.now() + timeoutMs };
      if (Array.isArray(input)) call.records = input;
      else call.columns = { rows, packed: packColumns(input) };
      if (shadow !== undefined) call.shadow = shadow;
      if (signal) {
        const withdraw = () => this.#withdraw(queueName, call, signal.reason as Error);
        signal.addEventListener('abort', withdraw, { once: true });
        pending.release = () => signal.removeEventListener('abort', withdraw);
      }
      const carrier = injectSpan(span);
      if (carrier) call.trace = carrier;
      const calls = this.#turn.get(queueName);
      if (calls) calls.push(call);
      else this.#turn.set(queueName, [call]);
      this.#turnCalls++;
    });
  }

  /** The refusal of a call that would not be answered in time, or undefined to take it. */
  #admit(timeoutMs: number): OverloadedError | undefined {
    const waiting = this.recordsWaiting;
    const waitMs = predictedWaitMs(waiting, this.#ratePerSecond);
    if (this.#sampledWaitingJobs + this.#jobsSinceSample > this.#options.maxWaiting) {
      return new OverloadedError(Math.min(MAX_RETRY_AFTER_S, waitMs / 1000));
    }
    // No more than one queue job's records ahead, with workers scoring: they go in the next
    // batch or two. A records/s rate measured on one-record calls is per-call cost, far below
    // what one batch of 1000 takes, and refusing on it turned a batch call away from an idle
    // service. A frozen worker (rate 0) is still refused at once.
    const withinOneJob = waiting <= this.#options.maxRecordsPerJob && (this.#ratePerSecond ?? 1) > 0;
    if (waitMs > timeoutMs && !withinOneJob) {
      return new OverloadedError(
        Math.min(MAX_RETRY_AFTER_S, waitMs / 1000),
        `The records already waiting would take longer than this call's timeout (${timeoutMs} ms); retry later`,
      );
    }
    return undefined;
  }

  async #flush(): Promise<void> {
    const turn = [...this.#turn].filter(([, calls]) => calls.length > 0);
    this.#turn = new Map();
    this.#turnCalls = 0;
    await Promise.all(turn.map(([queueName, calls]) => this.#flushQueue(this.#producers.get(queueName)!, calls)));
  }

  /** A caller gave up: out of this turn if it is still there (never queued), and settled now either way. */
  #withdraw(queueName: string, call: OnlineCall, reason: Error): void {
    const calls = this.#turn.get(queueName);
    const at = calls?.indexOf(call) ?? -1;
    if (at >= 0) calls!.splice(at, 1);
    this.#settle(call.call_id, (p) => p.reject(reason));
  }

  async #flushQueue(producer: PredictProducer, calls: OnlineCall[]): Promise<void> {
    const jobs: OnlineCall[][] = [];
    let current: OnlineCall[] = [];
    let records = 0;
    for (const call of calls) {
      if (current.length > 0 && records + callRows(call) > this.#options.maxRecordsPerJob) {
        jobs.push(current);
        current = [];
        records = 0;
      }
      current.push(call);
      records += callRows(call);
    }
    jobs.push(current);

    const now = Date.now();
    const data = jobs.map((jobCalls) => ({ reply_to: this.#channel, enqueued_at: now, calls: jobCalls }));
    // Counted as sent, not once Redis has answered: a depth sample can read these jobs before
    // this turn hears back, and must turn them into records at this turn's size.
    this.#jobsEnqueued += data.length;
    for (const call of calls) this.#recordsEnqueued += callRows(call);
    try {
      if (data.length === 1) await enqueue(producer, data[0]!);
      else {
        await enqueueBulk(
          producer,
          data.map((d) => ({ data: d })),
        );
      }
      this.#jobsSinceSample += data.length;
      for (const call of calls) {
        const pending = this.#pending.get(call.call_id);
        if (!pending) continue; // answered already, or given up (the next sample sees its job if it waits)
        pending.enqueuedIn = this.#sampleNumber;
        this.#recordsSinceSample += pending.records;
      }
    } catch (err) {
      this.#options.logger.warn({ err }, 'enqueue failed');
      // A full Redis refuses the write but answers: 507 with Retry-After, as POST /jobs says it.
      const refusal = () =>
        isRedisOutOfMemory(err) ? new InsufficientStorageError({ cause: err }) : new UnavailableError(undefined, { cause: err });
      for (const call of calls) this.#settle(call.call_id, (p) => p.reject(refusal()));
    }
  }

  #onReply(reply: OnlineReply): void {
    this.#settle(reply.call_id, (p) => {
      // Scored: no longer waiting, whatever the next sample reads.
      if (p.enqueuedIn === this.#sampleNumber) this.#recordsSinceSample -= p.records;
      if (reply.status === 'outputs') {
        p.resolve({ outputs: reply.outputs, modelName: reply.model_name, modelVersion: reply.model_version, timings: reply.timings });
      } else if (reply.code === 'model_not_found') {
        p.reject(new ModelNotFoundError(reply.message));
      } else if (reply.code === 'model_unavailable') {
        p.reject(new ModelUnavailableError(reply.message));
      } else {
        p.reject(new ModelError(reply.message));
      }
    });
  }

  /** Settles a call once; a reply that comes after its timeout finds nothing to settle. */
  #settle(callId: string, settle: (pending: Pending) => void): void {
    const pending = this.#pending.get(callId);
    if (!pending) return;
    this.#pending.delete(callId);
    this.#recordsInFlight -= pending.records;
    clearTimeout(pending.timer);
    pending.release?.();
    settle(pending);
  }

  async #sample(): Promise<void> {
    if (!isRedisReady(this.#options.redis)) return;
    try {
      // Jobs enqueued while this sample is read may or may not be in it: they stay counted.
      const since = { jobs: this.#jobsSinceSample, records: this.#recordsSinceSample };
      this.#sampleNumber++;
      // Every version's waiting jobs on every shard: the workers drain all of them, and the rate they are measured at is all of theirs.
      const [scored, ...waiting] = await Promise.all([
        this.#options.redis.get(this.#scoredKey),
        ...this.producers.flatMap((p) => p.shards.map((queue) => queue.getWaitingCount())),
      ]);
      this.#sampledWaitingJobs = (waiting as number[]).reduce((a, b) => a + b, 0);
      this.#jobsSinceSample -= since.jobs;
      this.#recordsSinceSample -= since.records;
      // A lifetime mean would let a past burst of large jobs (tens of records each) count every
      // one-record job waiting now as tens of records, and refuse callers at low load for it.
      if (this.#jobsEnqueued > 0) {
        this.#meanRecordsPerJob = this.#recordsEnqueued / this.#jobsEnqueued;
        this.#jobsEnqueued = 0;
        this.#recordsEnqueued = 0;
      }
      const now = Date.now();
      this.#rateSamples.push({ at: now, scored: Number(scored ?? 0), waiting: this.recordsWaiting });
      trimSamples(this.#rateSamples, now, RATE_WINDOW_MS);
      const sustained = busyScoringRate(this.#rateSamples, now, RATE_WINDOW_MS, MIN_BUSY_MS);
      const recent = windowScoringRate(this.#rateSamples, now, RECENT_WINDOW_MS) ?? 0;
      this.#ratePerSecond = sustained === undefined ? undefined : Math.max(sustained, recent);
    } catch {
      // Redis went away between the check and the call; the next sample tries again.
    }
  }

  /** Stops taking calls; calls in flight keep waiting for their replies until their timeouts. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    clearInterval(this.#sampleTimer);
    // Let the callers still waiting hear their replies before unsubscribing, within SHUTDOWN_TIMEOUT_MS.
    const deadline = Date.now() + this.#options.drainTimeoutMs;
    while (this.#pending.size > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 10));
    await this.#unsubscribe?.();
    await Promise.all(this.producers.flatMap((p) => p.shards.map((queue) => queue.close())));
  }
}
