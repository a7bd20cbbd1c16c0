// The bulk measurement, written against the contract: POST /jobs with an NDJSON body, poll
// GET /jobs/:id until it has completed, then stream GET /jobs/:id/results as NDJSON and count
// every result. The clock runs from the first byte of the submission to the last byte of the
// results. Until the api serves POST /jobs the measurement reports why it is not available.
import { generateFraudRecords } from '../scripts/model/fraud-data.ts';

/** Records generated per seed; the body is built from slices so 1,000,000 records never sit in memory as objects. */
const GENERATION_SLICE = 50_000;
const POLL_INTERVAL_MS = 100;
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

export async function runBulk(apiUrl: string, body: Buffer, records: number, timeoutMs: number): Promise<BulkOutcome> {
  const started = performance.now();
  let submitted: Response;
  try {
    submitted = await fetch(`${apiUrl}/jobs`, {
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

  const res = await fetch(resultsUrl, { headers: { accept: 'application/x-ndjson' } });
  if (!res.ok || !res.body) {
    return { available: false, reason: `GET ${resultsUrl} answered ${res.status}: ${(await res.text()).slice(0, 300)}` };
  }
  const { count, ordered } = await countResults(res.body);
  const finished = performance.now();
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

/** Counts NDJSON lines as they stream and checks that `index` runs 0, 1, 2, ... */
async function countResults(body: ReadableStream<Uint8Array>): Promise<{ count: number; ordered: boolean }> {
  const decoder = new TextDecoder();
  let count = 0;
  let ordered = true;
  let rest = '';
  for await (const chunk of body) {
    const text = rest + decoder.decode(chunk, { stream: true });
    let start = 0;
    for (let nl = text.indexOf('\n'); nl !== -1; nl = text.indexOf('\n', start)) {
      const line = text.slice(start, nl);
      start = nl + 1;
      if (line.length === 0) continue;
      // Checking every 1000th line keeps parsing off the download's clock.
      if (count % 1000 === 0 && (JSON.parse(line) as { index?: number }).index !== count) ordered = false;
      count++;
    }
    rest = text.slice(start);
  }
  if (rest.trim().length > 0) count++;
  return { count, ordered };
}

function absolute(base: string, url: string): string {
  return new URL(url, base).toString();
}

function round(value: number): number {
  return Math.round(value * 1000) / 1000;
}
