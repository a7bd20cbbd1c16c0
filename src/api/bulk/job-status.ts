// What a client sees of a job's state: the 202 of a submission or a cancel, and GET /jobs/:id.
import type { BulkJobState } from '../../shared/bulk-store.ts';
import type { JobAccepted, JobStatus, JobStatusName } from '../../shared/schemas/bulk-job.ts';

function iso(ms: number | null): string | null {
  return ms === null ? null : new Date(ms).toISOString();
}

/** `waitingFor`: why a queued or running job does not move (job-model.ts's waitingFor), if it does not. */
export function renderStatus(job: BulkJobState, waitingFor?: string): JobStatus {
  const active = job.status === 'queued' || job.status === 'running';
  return {
    job_id: job.jobId,
    status: job.status,
    progress: { total: job.total, done: job.done },
    model_name: job.modelName,
    model_version: job.modelVersion,
    model_version_number: job.modelVersionNumber,
    scored_by: job.scoredBy,
    ...(active && waitingFor ? { waiting_for: waitingFor } : {}),
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
