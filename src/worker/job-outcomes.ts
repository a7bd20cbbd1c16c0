// Counts every job a BullMQ worker finishes by outcome, from the worker's own events:
// completed, expired (an online job whose every call had passed its deadline: the processor
// returns 'expired'), retried (failed with attempts left) and failed (BullMQ gave up on it).
import type { Consumer } from '../shared/queue-clients.ts';
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
