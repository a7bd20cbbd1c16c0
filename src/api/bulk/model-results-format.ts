// The results of a job of any model but fraud (row-form result chunks, bulk-rows.ts), in the same
// three formats as fraud's: each result is {index, id?, ...outputs by name}. JSON and NDJSON carry
// the outputs as they are; CSV gives each output a column, a scalar as its value and an array or
// an object (class labels over probabilities) as JSON text in the cell.
import { Readable } from 'node:stream';
import { decodeRowResults } from '../../shared/bulk-rows.ts';
import type { BulkJobState, BulkStore } from '../../shared/bulk-store.ts';
import { NotFoundError } from '../../shared/errors.ts';
import type { ResultFormat, StreamedResultFormat } from './results-format.ts';

function csvCell(value: unknown): string {
  if (value === undefined || value === null) return '';
  const text = typeof value === 'object' ? JSON.stringify(value) : String(value);
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

function jsonRow(index: number, id: string | undefined, outputs: Record<string, unknown>): string {
  return JSON.stringify({ index, ...(id ? { id } : {}), ...outputs });
}

/** Results [from, to) as formatted rows, one chunk (one piece of text) at a time; `columns` only for CSV. */
async function* rows(
  store: BulkStore,
  job: BulkJobState,
  format: ResultFormat,
  from: number,
  to: number,
  columns?: string[],
): AsyncGenerator<string> {
  let first = true;
  for (let chunk = Math.floor(from / job.chunkSize); chunk * job.chunkSize < to; chunk++) {
    const bytes = await store.readResultChunk(job.jobId, chunk);
    // Only expiry removes a result chunk of a completed job.
    if (!bytes) throw new NotFoundError(`No job ${job.jobId}`);
    const { outputs, ids } = decodeRowResults(bytes);
    const base = chunk * job.chunkSize;
    let piece = '';
    for (let index = Math.max(from, base); index < Math.min(to, base + outputs.length); index++) {
      const row = index - base;
      const id = ids?.[row] || undefined;
      if (format === 'text/csv') {
        piece += `${index},${csvCell(id)}${columns!.map((c) => `,${csvCell(outputs[row]![c])}`).join('')}\n`;
      } else if (format === 'application/json') {
        piece += `${first ? '' : ','}${jsonRow(index, id, outputs[row]!)}`;
      } else piece += `${jsonRow(index, id, outputs[row]!)}\n`;
      first = false;
    }
    yield piece;
  }
}

/** One page of results as the JSON text of a ResultsPage. */
export async function modelResultsPage(store: BulkStore, job: BulkJobState, offset: number, limit: number): Promise<string> {
  const end = Math.min(job.total, offset + limit);
  let text = '{"results":[';
  for await (const piece of rows(store, job, 'application/json', offset, end)) text += piece;
  return `${text}],"next_offset":${end < job.total ? end : 'null'}}`;
}

/** Every result of a job, in order, as NDJSON or CSV text; the CSV columns are the first result's outputs. */
export function modelResultsStream(store: BulkStore, job: BulkJobState, format: StreamedResultFormat): Readable {
  async function* text() {
    let columns: string[] | undefined;
    if (format === 'text/csv') {
      const bytes = await store.readResultChunk(job.jobId, 0);
      if (!bytes) throw new NotFoundError(`No job ${job.jobId}`);
      columns = Object.keys(decodeRowResults(bytes).outputs[0] ?? {});
      yield `index,id${columns.map((c) => `,${csvCell(c)}`).join('')}\n`;
    }
    yield* rows(store, job, format, 0, job.total, columns);
  }
  return Readable.from(text(), { objectMode: false });
}
