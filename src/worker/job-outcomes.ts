// Counts every job a BullMQ worker finishes by outcome, from the worker's own events:
// completed, expired (an online job whose every call had passed its deadline: the processor
// returns EXPIRED), retried (failed with attempts left) and failed (BullMQ gave up on it).
import type { Job, Worker } from 'bullmq';
import type { WorkerMetrics } from './worker-metrics.ts';

/** What a processor returns for a job it did not score because its callers had gone. */
export const EXPIRED = 'expired';

export function countJobOutcomes(worker: Worker, queue: string, metrics: WorkerMetrics): void {
  worker.on('completed', (_job: Job, result: unknown) => {
    metrics.jobs.add(1, { queue, outcome: result === EXPIRED ? 'expired' : 'completed' });
  });
  worker.on('failed', (job: Job | undefined) => {
    // finishedOn is set only once BullMQ has given up; a job with attempts left is retried.
    metrics.jobs.add(1, { queue, outcome: job && !job.finishedOn ? 'retried' : 'failed' });
  });
}
