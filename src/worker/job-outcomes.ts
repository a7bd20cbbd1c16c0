// Counts every job a BullMQ worker finishes by outcome, from the worker's own events:
// completed, expired (an online job whose every call had passed its deadline: the processor
// returns 'expired'), retried (failed with attempts left) and failed (BullMQ gave up on it).
import type { Redis } from 'ioredis';
import { recordsScoredKey } from '../shared/keys.ts';
import { QUEUES } from '../shared/queues.ts';
import type { Consumer, QueueConsumer } from '../shared/queue-clients.ts';
import type { WorkerMetrics } from './worker-metrics.ts';

export function countJobOutcomes<R, N extends string>(worker: Consumer<R, N>, queue: string, metrics: WorkerMetrics): void {
  worker.on('completed', (_job, result) => {
    metrics.jobs.add(1, { queue, outcome: result === 'expired' ? 'expired' : 'completed' });
  });
  worker.on('failed', (job) => {
    // finishedOn is set only once BullMQ has given up; a job with attempts left is retried.
    metrics.jobs.add(1, { queue, outcome: job && !job.finishedOn ? 'retried' : 'failed' });
  });
}

/**
 * Adds each chunk a bulk worker wrote to the records-scored counter in Redis, so the api's
 * drain-time gauge divides by the rate of all scoring, online and bulk.
 */
export function countScoredChunks(worker: QueueConsumer<'bulk'>, redis: Redis, prefix: string): void {
  const key = recordsScoredKey(prefix);
  worker.on('completed', (job, result) => {
    const parsed = QUEUES.bulk.data.safeParse(job.data);
    if (result === 'written' && parsed.success) void redis.incrby(key, parsed.data.count).catch(() => undefined);
  });
}
