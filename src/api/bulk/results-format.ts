// A completed job's results as the client asked for them: the format its Accept header prefers,
// and one row formatter behind all three. A JSON page is that formatter's objects inside
// {"results": [...], "next_offset"}; NDJSON is the same objects one per line; CSV is the same
// fields as lines under a header. Rows are read from one result chunk at a time and written as
// text straight from its columns, without an object per result: the download's garbage, not the
// job, would otherwise set the api's peak memory.
import { Readable } from 'node:stream';
import { decisionOf, decodeResults, type ChunkResults } from '../../shared/bulk-chunk.ts';
import type { BulkJobState, BulkStore } from '../../shared/bulk-store.ts';
import { NotFoundError } from '../../shared/errors.ts';

export const RESULT_FORMATS = ['application/json', 'application/x-ndjson', 'text/csv'] as const;
export type ResultFormat = (typeof RESULT_FORMATS)[number];
/** The formats that stream every result rather than a page. */
export type StreamedResultFormat = Exclude<ResultFormat, 'application/json'>;

export const RESULT_CONTENT_TYPES = {
  'application/json': 'application/json; charset=utf-8',
  'application/x-ndjson': 'application/x-ndjson',
  'text/csv': 'text/csv; charset=utf-8',
} as const satisfies Record<ResultFormat, string>;

export const CSV_HEADER = 'index,id,fraud_probability,decision\n';

/** Rows per piece of text (~80 kB). */
const PIECE_ROWS = 1000;

/** The first supported type in the client's Accept preference (q-values honoured); JSON by default. */
export function preferredResultFormat(accept: string | undefined): ResultFormat {
  let best: { format: ResultFormat; q: number } = { format: 'application/json', q: -1 };
  for (const part of (accept ?? '').split(',')) {
    const [type, ...params] = part.split(';').map((s) => s.trim().toLowerCase());
    const qParam = params.find((p) => p.startsWith('q='));
    const q = qParam ? Number(qParam.slice(2)) : 1;
    const format = type === '*/*' || type === 'application/*' ? 'application/json' : RESULT_FORMATS.find((f) => f === type);
    if (format && q > best.q) best = { format, q };
  }
  return best.format;
}

function csvCell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

/**
 * The one row formatter: result `row` of a chunk, the job's record `index`, as a JSON object
 * (JSON and NDJSON) or a CSV line, without separator. Its fields are JobResultSchema's.
 */
export function formatResult(format: ResultFormat, results: ChunkResults, row: number, index: number): string {
  const probability = results.probabilities[row]!;
  const decision = decisionOf(results.decisions[row]!);
  const id = results.ids?.[row];
  if (format === 'text/csv') return `${index},${csvCell(id ?? '')},${probability},${decision}`;
  return `{"index":${index},${id ? `"id":${JSON.stringify(id)},` : ''}"fraud_probability":${probability},"decision":"${decision}"}`;
}

/**
 * Results [from, to) of a job as formatted rows, in pieces of up to PIECE_ROWS rows, one result
 * chunk in memory at a time. JSON rows are separated by commas (the inside of an array), NDJSON
 * and CSV rows each end a line.
 */
async function* formattedRows(store: BulkStore, job: BulkJobState, format: ResultFormat, from: number, to: number): AsyncGenerator<string> {
  const json = format === 'application/json';
  let first = true;
  for (let chunk = Math.floor(from / job.chunkSize); chunk * job.chunkSize < to; chunk++) {
    const bytes = await store.readResultChunk(job.jobId, chunk);
    // Only expiry removes a result chunk of a completed job.
    if (!bytes) throw new NotFoundError(`No job ${job.jobId}`);
    const results = decodeResults(bytes);
    const base = chunk * job.chunkSize;
    const end = Math.min(to, base + results.length);
    for (let pieceFrom = Math.max(from, base); pieceFrom < end; pieceFrom += PIECE_ROWS) {
      let piece = '';
      for (let index = pieceFrom; index < Math.min(end, pieceFrom + PIECE_ROWS); index++) {
        const text = formatResult(format, results, index - base, index);
        if (!json) piece += `${text}\n`;
        else if (first) piece += text;
        else piece += `,${text}`;
        first = false;
      }
      yield piece;
    }
  }
}

/** One page of results as the JSON text of a ResultsPage. */
export async function resultsPage(store: BulkStore, job: BulkJobState, offset: number, limit: number): Promise<string> {
  const end = Math.min(job.total, offset + limit);
  let text = '{"results":[';
  for await (const piece of formattedRows(store, job, 'application/json', offset, end)) text += piece;
  return `${text}],"next_offset":${end < job.total ? end : 'null'}}`;
}

/** Every result of a job, in order, as a stream of NDJSON or CSV text. */
export function resultsStream(store: BulkStore, job: BulkJobState, format: StreamedResultFormat): Readable {
  async function* text() {
    if (format === 'text/csv') yield CSV_HEADER;
    yield* formattedRows(store, job, format, 0, job.total);
  }
  return Readable.from(text(), { objectMode: false });
}
