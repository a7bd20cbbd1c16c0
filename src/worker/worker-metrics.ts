// The worker's own instruments. Inference runs vs records scored gives the mean batch size,
// the way Triton's execution count vs inference count does.
import type { Meter } from '@opentelemetry/api';
import { DURATION_BUCKETS_S } from '../shared/telemetry.ts';
import type { RepositorySnapshot } from '../shared/model-catalog.ts';

/** |score difference| buckets: most records of two close versions differ by far less than 0.01. */
const DIFFERENCE_BUCKETS = [0.0001, 0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1];

const BATCH_SIZE_BUCKETS = [1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024, 2048, 4096, 8192, 16384];

export function createWorkerMetrics(meter: Meter) {
  return {
    batchRecords: meter.createHistogram('scoring_batch_records', {
      description: 'Records per session.run',
      advice: { explicitBucketBoundaries: BATCH_SIZE_BUCKETS },
    }),
    inferenceDuration: meter.createHistogram('scoring_inference_duration_seconds', {
      description: 'Time one session.run took',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    }),
    queueWait: meter.createHistogram('scoring_queue_wait_seconds', {
      description: 'From enqueue by the api to pick-up by a worker',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    }),
    batchWait: meter.createHistogram('scoring_batch_wait_seconds', {
      description: 'From pick-up by a worker to the start of the session.run of its batch (the batcher)',
      unit: 's',
      advice: { explicitBucketBoundaries: DURATION_BUCKETS_S },
    }),
    recordsScored: meter.createCounter('scoring_records_scored_total', { description: 'Records scored, by kind' }),
    jobs: meter.createCounter('scoring_jobs_total', {
      description: 'Queue jobs this worker finished, by queue and outcome (completed, failed, expired, retried)',
    }),
    onlineCalls: meter.createCounter('scoring_online_calls_total', {
      description: 'Online calls taken by this worker, by outcome (scored, expired, failed)',
    }),
    modelErrors: meter.createCounter('scoring_model_errors_total', {
      description: 'Model failures by kind: online (a session.run of an online batch threw), record (a record with no finite output)',
    }),
    // Shadow scoring (shadow-scoring.ts), per model_name, model_version (the answering one) and shadow_version.
    shadowCompared: meter.createCounter('scoring_shadow_compared_total', {
      description: 'Records scored by both the answering version and its shadow',
    }),
    shadowAgreed: meter.createCounter('scoring_shadow_agreed_total', {
      description: 'Compared records whose decision (or label) the two versions agree on',
    }),
    shadowFailed: meter.createCounter('scoring_shadow_failed_total', {
      description:
        'Records the shadow gave no comparison for, by reason: model_error, records_not_valid_for_shadow, shadow_not_held (this worker does not hold it), shed (too much shadow work waiting)',
    }),
    shadowDifference: meter.createHistogram('scoring_shadow_score_difference', {
      description: '|score difference| between the answering version and its shadow, per record',
      advice: { explicitBucketBoundaries: DIFFERENCE_BUCKETS },
    }),
  };
}

export type WorkerMetrics = ReturnType<typeof createWorkerMetrics>;

/**
 * scoring_model_load_failures: 1 per model version whose last load failed (the loaded session, if
 * any, keeps serving), read from the repository at each collection so a fixed version drops out.
 */
export function observeModelLoadFailures(meter: Meter, snapshot: () => RepositorySnapshot): void {
  meter
    .createObservableGauge('scoring_model_load_failures', {
      description: 'Model versions whose last load failed (1 each), by model_name and model_version; the reason is in the log and GET /models/{name}',
    })
    .addCallback((result) => {
      for (const model of snapshot().models) {
        for (const v of model.versions) {
          if (v.reason) result.observe(1, { model_name: model.name, model_version: String(v.version) });
        }
      }
    });
}

/** scoring_score_psi: each held version's score drift (PSI of its last scores against its manifest's reference). */
export function observeScoreDrift(meter: Meter, snapshot: () => RepositorySnapshot): void {
  meter
    .createObservableGauge('scoring_score_psi', {
      description:
        "Population stability index of a version's last SCORE_DRIFT_WINDOW scores against its held-out reference, by model_name and model_version",
    })
    .addCallback((result) => {
      for (const model of snapshot().models) {
        for (const v of model.versions) {
          if (v.drift?.psi != null) result.observe(v.drift.psi, { model_name: model.name, model_version: String(v.version) });
        }
      }
    });
}
