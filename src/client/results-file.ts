// A job's results written to a file as NDJSON or CSV, resumable: what the file already holds
// (whole lines) is counted, a torn last line is cut, and the download continues from that
// offset with JSON pages. The lines are the same the service streams for Accept:
// application/x-ndjson or text/csv.
import { createWriteStream, type WriteStream } from 'node:fs';
import { open, stat, truncate } from 'node:fs/promises';
import { once } from 'node:events';
import type { JobResult } from '../shared/schemas/bulk-job.ts';

export type ResultsFormat = 'ndjson' | 'csv';

export const CSV_HEADER = 'index,id,fraud_probability,decision';

function csvCell(text: string): string {
  return /[",\r\n]/.test(text) ? `"${text.replaceAll('"', '""')}"` : text;
}

export function formatResult(result: JobResult, format: ResultsFormat): string {
  if (format === 'csv') return `${result.index},${csvCell(result.id ?? '')},${result.fraud_probability},${result.decision}\n`;
  return JSON.stringify(result) + '\n';
}

/** The format a file name asks for: .csv is CSV, anything else NDJSON. */
export function formatForPath(path: string): ResultsFormat {
  return path.toLowerCase().endsWith('.csv') ? 'csv' : 'ndjson';
}

export class ResultsFileError extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

const TAIL_BYTES = 64 * 1024;

export type PartialFile = {
  /** Results already in the file. */
  results: number;
  /** True when the file holds nothing (not even a CSV header) once a torn line is cut. */
  empty: boolean;
};

/**
 * What the file already holds. Cuts a torn last line (a download killed mid-write), and checks
 * the last whole line is result number count-1, so an unrelated file is never appended to.
 */
export async function resultsAlreadyWritten(path: string, format: ResultsFormat): Promise<PartialFile> {
  const size = await stat(path).then(
    (s) => s.size,
    () => 0,
  );
  if (size === 0) return { results: 0, empty: true };
  const handle = await open(path, 'r');
  let lines = 0;
  let wholeBytes = 0;
  let lastLine: string;
  let firstLine: string | undefined;
  try {
    // One pass over the file counting newlines; the text of the first and last whole lines is kept.
    const buffer = Buffer.allocUnsafe(TAIL_BYTES);
    let position = 0;
    let pending = '';
    while (position < size) {
      const { bytesRead } = await handle.read(buffer, 0, buffer.length, position);
      if (bytesRead === 0) break;
      for (let i = 0; i < bytesRead; i++) {
        if (buffer[i] === 0x0a) {
          lines++;
          wholeBytes = position + i + 1;
        }
      }
      // Only the text around the last newline matters: keep a bounded tail.
      pending = (pending + buffer.toString('utf8', 0, bytesRead)).slice(-TAIL_BYTES * 2);
      if (firstLine === undefined && pending.includes('\n')) firstLine = pending.slice(0, pending.indexOf('\n'));
      position += bytesRead;
    }
    const whole = pending.slice(0, pending.lastIndexOf('\n'));
    lastLine = whole.slice(whole.lastIndexOf('\n') + 1);
  } finally {
    await handle.close();
  }
  if (wholeBytes < size) await truncate(path, wholeBytes);
  if (lines === 0) return { results: 0, empty: true };
  if (format === 'csv' && firstLine !== CSV_HEADER) {
    throw new ResultsFileError(`${path} does not start with the results header "${CSV_HEADER}"; not resuming into it`);
  }
  const count = format === 'csv' ? lines - 1 : lines;
  if (count === 0) return { results: 0, empty: false };
  const lastIndex = format === 'csv' ? Number(lastLine.split(',')[0]) : indexOfJson(lastLine);
  if (lastIndex !== count - 1) {
    throw new ResultsFileError(`${path} holds ${count} lines but its last is not result ${count - 1}; not resuming into it`);
  }
  return { results: count, empty: false };
}

function indexOfJson(line: string): number {
  try {
    return (JSON.parse(line) as { index?: number }).index ?? NaN;
  } catch {
    return NaN;
  }
}

/** Appends lines to a file, waiting for the disk when the stream's buffer is full. */
export class LineWriter {
  readonly #stream: WriteStream;

  constructor(path: string) {
    this.#stream = createWriteStream(path, { flags: 'a' });
  }

  async write(text: string): Promise<void> {
    if (!this.#stream.write(text)) await once(this.#stream, 'drain');
  }

  async close(): Promise<void> {
    this.#stream.end();
    await once(this.#stream, 'finish');
  }
}
