// GET /jobs: the caller's jobs, newest first, a page at a time. The owner's listing (a sorted set
// by created_at) is walked from the cursor; each job is read, and members whose job has expired
// are dropped from the listing on the way, so it never needs a sweeper.
import type { BulkJobState, BulkStore, JobPosition } from '../../shared/bulk-store.ts';
import type { JobStatusName } from '../../shared/schemas/bulk-job.ts';

export type JobListRequest = {
  owner: string;
  status: JobStatusName | undefined;
  limit: number;
  after: JobPosition | null;
};

export type JobListPage = { jobs: BulkJobState[]; next: JobPosition | null };

/** Jobs read at once. */
const READ_BATCH = 100;
/**
 * Listing members one request looks at, at most: with a status filter that matches few jobs, a
 * page comes back short (with a cursor) rather than the request reading an owner's every job.
 */
const MAX_SCANNED = 1000;

export async function listJobs(store: BulkStore, request: JobListRequest): Promise<JobListPage> {
  const { owner, status, limit } = request;
  const members = store.ownerJobIds(owner, request.after, READ_BATCH);
  const jobs: BulkJobState[] = [];
  const gone: string[] = [];
  let position = request.after;
  let scanned = 0;
  let exhausted = false;
  let unread = false;
  try {
    while (jobs.length < limit && scanned < MAX_SCANNED && !exhausted) {
      const batch: JobPosition[] = [];
      while (batch.length < Math.min(READ_BATCH, MAX_SCANNED - scanned)) {
        const next = await members.next();
        if (next.done) {
          exhausted = true;
          break;
        }
        batch.push(next.value);
      }
      scanned += batch.length;
      const states = await Promise.all(batch.map((member) => store.readJob(member.jobId)));
      for (let i = 0; i < batch.length; i++) {
        if (jobs.length === limit) {
          unread = true;
          break;
        }
        const job = states[i];
        position = batch[i]!;
        if (!job) gone.push(position.jobId);
        // A staging job (its upload not yet wholly queued) is not a job yet: left out, kept listed.
        else if (!job.staging && (status === undefined || job.status === status)) jobs.push(job);
      }
    }
    const more = unread || (!exhausted && !(await members.next()).done);
    return { jobs, next: more ? position : null };
  } finally {
    await members.return(undefined);
    await store.forgetJobs(owner, gone);
  }
}
