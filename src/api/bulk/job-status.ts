// What a client sees of a job's state: the 202 of a submission or a cancel, and GET /jobs/:id.
import type { BulkJobState } from '../../shared/bulk-store.ts';
import type { JobAccepted, JobStatus, JobStatusName } from '../../shared/schemas/bulk-job.ts';

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

export function renderStatus(job: BulkJobState): JobStatus {
  return {
    job_id: job.jobId,
    status: job.status,
    progress: { total: job.total, done: job.done },
    model_version: job.modelVersion,
    created_at: iso(job.createdAt)!,
    started_at: iso(job.startedAt),
    finished_at: iso(job.finishedAt),
    expires_at: iso(job.expiresAt)!,
    error: job.error,
  };
}

/** Where a job's status lives: the Location of a 202. */
export function statusUrl(jobId: string): string {
  return `/jobs/${jobId}`;
}

export function renderAccepted(jobId: string, status: JobStatusName): JobAccepted {
  const url = statusUrl(jobId);
  return { job_id: jobId, status, status_url: url, results_url: `${url}/results` };
}
