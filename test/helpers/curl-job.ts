// POST /jobs from a file by curl, as a user uploads a large body: curl streams it from disk at its
// own pace, in its own process, so the caller's event loop and memory stay out of the upload.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';

const run = promisify(execFile);

/**
 * Submits an NDJSON file; resolves with the job id once the upload is answered, rejects with the
 * answer otherwise. Aborting `signal` kills curl mid-upload, as a client that goes away.
 */
export async function submitFileWithCurl(apiUrl: string, file: string, key: string, query = '', signal?: AbortSignal): Promise<string> {
  const { stdout } = await run(
    'curl',
    [
      '-sS',
      '-X',
      'POST',
      '-H',
      'content-type: application/x-ndjson',
      '-H',
      `authorization: Bearer ${key}`,
      '--data-binary',
      `@${file}`,
      `${apiUrl}/jobs${query}`,
    ],
    { maxBuffer: 1 << 20, ...(signal && { signal }) },
  );
  let body: { job_id?: string } = {};
  try {
    body = JSON.parse(stdout) as { job_id?: string };
  } catch {
    // Not JSON: the answer itself is the message.
  }
  if (!body.job_id) throw new Error(`POST /jobs answered ${stdout.slice(0, 300)}`);
  return body.job_id;
}
