// The bulk measurement, written against the contract: POST /jobs with an NDJSON body, poll
// GET /jobs/:id until it has completed, then stream GET /jobs/:id/results as NDJSON and count
// every result. The clock runs from the first byte of the submission to the last byte of the
// results. Until the api serves POST /jobs the measurement reports why it is not available.
import { generateFraudRecords } from '../scripts/model/fraud-data.ts';

/** Records generated per seed; the body is built from slices so 1,000,000 records never sit in memory as objects. */
const GENERATION_SLICE = 50_000;
const POLL_INTERVAL_MS = 25;
/** A job whose progress has not moved for this long has no worker taking its chunks. */
const STALL_MS = 30_000;

export function buildNdjson(records: number, seed = 1000): Buffer {
  const parts: Buffer[] = [];
  for (let done = 0, slice = 0; done < records; slice++) {
    const n = Math.min(GENERATION_SLICE, records - done);
    const lines = generateFraudRecords(seed + slice, n).map((r) => JSON.stringify(r));
    parts.push(Buffer.from(lines.join('\n') + '\n'));
    done += n;
  }
  return Buffer.concat(parts);
}

export type BulkOutcome =
  | {
      available: true;
      records: number;
      bytes: number;
      seconds: number;
      records_per_s: number;
      submit_s: number;
      scoring_s: number;
      download_s: number;
      results: number;
      ordered: boolean;
    }
  | { available: false; reason: string };

type JobStatus = { status: string; progress?: { total: number; done: number }; error?: unknown };

export type BulkPhase = 'submitted' | 'scored' | 'downloaded';

/** onPhase is called as each phase ends (the bench meters CPU per phase). */
export async function runBulk(
  apiUrl: string,
  body: Buffer,
  records: number,
  timeoutMs: number,
  onPhase: (phase: BulkPhase) => void = () => undefined,
  /** e.g. `?model=fraud&version=2`; none: the default model's champion. */
  query = '',
): Promise<BulkOutcome> {
  const started = performance.now();
  let submitted: Response;
  try {
    submitted = await fetch(`${apiUrl}/jobs${query}`, {
      method: 'POST',
      headers: { 'content-type': 'application/x-ndjson' },
      body,
    });
  } catch (err) {
    return { available: false, reason: `POST /jobs failed: ${String(err)}` };
  }
  const submitText = await submitted.text();
  if (submitted.status === 404) {
    return { available: false, reason: `POST /jobs answered 404 (the api has no bulk route yet): ${submitText.slice(0, 200)}` };
  }
  if (submitted.status !== 202) {
    return { available: false, reason: `POST /jobs answered ${submitted.status}: ${submitText.slice(0, 300)}` };
  }
  const accepted = JSON.parse(submitText) as { job_id: string; status_url?: string; results_url?: string };
  const submitS = (performance.now() - started) / 1000;
  onPhase('submitted');
  const statusUrl = absolute(apiUrl, accepted.status_url ?? `/jobs/${accepted.job_id}`);
  const resultsUrl = absolute(apiUrl, accepted.results_url ?? `/jobs/${accepted.job_id}/results`);

  const deadline = Date.now() + timeoutMs;
  let status: JobStatus = { status: 'queued' };
  let lastDone = -1;
  let movedAt = Date.now();
  while (status.status !== 'completed') {
    const done = status.progress?.done ?? 0;
    if (done !== lastDone) {
      lastDone = done;
      movedAt = Date.now();
    } else if (Date.now() - movedAt > STALL_MS) {
      return {
        available: false,
        reason: `job ${accepted.job_id} made no progress for ${STALL_MS / 1000} s (${status.status}, ${JSON.stringify(status.progress)}): no worker is scoring bulk chunks`,
      };
    }
    if (['failed', 'cancelled'].includes(status.status)) {
      return { available: false, reason: `job ${accepted.job_id} ended ${status.status}: ${JSON.stringify(status.error)}` };
    }
    if (Date.now() > deadline) {
      return {
        available: false,
        reason: `job ${accepted.job_id} not completed within ${timeoutMs} ms (${status.status}, ${JSON.stringify(status.progress)})`,
      };
    }
    await new Promise((r) => setTimeout(r, POLL_INTERVAL_MS));
    const res = await fetch(statusUrl);
    if (!res.ok) return { available: false, reason: `GET ${statusUrl} answered ${res.status}: ${(await res.text()).slice(0, 300)}` };
    status = (await res.json()) as JobStatus;
  }
  const scoredAt = performance.now();
  onPhase('scored');

  const res = await fetch(resultsUrl, { headers: { accept: 'application/x-ndjson' } });
  if (!res.ok || !res.body) {
    return { available: false, reason: `GET ${resultsUrl} answered ${res.status}: ${(await res.text()).slice(0, 300)}` };
  }
  const { count, ordered } = await countResults(res.body);
  const finished = performance.now();
  onPhase('downloaded');
  const seconds = (finished - started) / 1000;
  return {
    available: true,
    records,
    bytes: body.length,
    seconds: round(seconds),
    records_per_s: Math.round(records / seconds),
    submit_s: round(submitS),
    scoring_s: round((scoredAt - started) / 1000 - submitS),
    download_s: round((finished - scoredAt) / 1000),
    results: count,
    ordered,
  };
}

/**
 * Counts NDJSON lines as they stream, on the bytes (a newline is byte 10 in UTF-8), so the load
 * generator spends little CPU on the download it measures; every 1000th line is parsed to check
 * that `index` runs 0, 1, 2, ...
 */
export async function countResults(body: ReadableStream<Uint8Array>): Promise<{ count: number; ordered: boolean }> {
  let count = 0;
  let ordered = true;
  let pending: Buffer[] = [];
  for await (const chunk of body) {
    const buf = Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let start = 0;
    for (let nl = buf.indexOf(10, start); nl !== -1; nl = buf.indexOf(10, start)) {
      if (nl > start || pending.length > 0) {
        if (count % 1000 === 0) {
          const line = Buffer.concat([...pending, buf.subarray(start, nl)]).toString('utf8');
          if ((JSON.parse(line) as { index?: number }).index !== count) ordered = false;
        }
        count++;
      }
      pending = [];
      start = nl + 1;
    }
    // Only a line that may need parsing keeps its bytes.
    if (start < buf.length) pending = count % 1000 === 0 ? [...pending, Buffer.from(buf.subarray(start))] : [Buffer.alloc(1)];
  }
  if (pending.length > 0) count++;
  return { count, ordered };
}

function absolute(base: string, url: string): string {
  return new URL(url, base).toString();
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
