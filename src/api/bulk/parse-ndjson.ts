// NDJSON bodies: one JSON record per line, split on the bytes as they arrive, so neither the body
// nor its records are ever held at once. Line numbers count every line from 1; blank lines are
// skipped (a trailing newline is not a record).
import { StringDecoder } from 'node:string_decoder';
import { ValidationError } from '../../shared/errors.ts';
import { validateRecord, type ParsedRow, type RowValidator } from './parsed-row.ts';

/** A fraud record is ~150 bytes; a line this long is not one, and must not grow without bound. */
export const MAX_LINE_CHARS = 65_536;

/** Fraud's records, one per line. */
export function parseNdjson(body: AsyncIterable<Buffer>): AsyncGenerator<ParsedRow> {
  return parseNdjsonLines(body, validateRecord, MAX_LINE_CHARS);
}

/** One JSON value per line, each handed to `validate` with its line number; lines past maxLineChars are refused. */
export async function* parseNdjsonLines<R>(
  body: AsyncIterable<Buffer>,
  validate: RowValidator<R>,
  maxLineChars: number,
): AsyncGenerator<ParsedRow<R>> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let line = 0;
  let first = true;

  function parseLine(text: string): ParsedRow<R> | undefined {
    line++;
    if (first) {
      first = false;
      if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
    }
    if (text.trim() === '') return undefined;
    let value: unknown;
    try {
      value = JSON.parse(text);
    } catch (err) {
      return { ok: false, details: [{ path: `lines.${line}`, message: `Invalid JSON: ${(err as Error).message}` }] };
    }
    return validate(value, ['lines', line]);
  }

  for await (const bytes of body) {
    const text = carry + decoder.write(bytes);
    let start = 0;
    let newline = text.indexOf('\n', start);
    while (newline !== -1) {
      const row = parseLine(text.slice(start, newline));
      if (row) yield row;
      start = newline + 1;
      newline = text.indexOf('\n', start);
    }
    carry = text.slice(start);
    if (carry.length > maxLineChars) {
      throw new ValidationError('A line is too long to be a record', [
        { path: `lines.${line + 1}`, message: `Longer than ${maxLineChars} characters` },
      ]);
    }
  }
  const rest = carry + decoder.end();
  if (rest !== '') {
    const row = parseLine(rest);
    if (row) yield row;
  }
}
