// NDJSON for any model's records: one JSON value per line, split on the bytes as they arrive and
// handed to `validate` with the line's number (from 1, blank lines skipped, as fraud's parser counts).
import { StringDecoder } from 'node:string_decoder';
import { ValidationError } from '../../shared/errors.ts';
import type { ParsedRow } from './parsed-row.ts';

/** Far more than any record the service takes; a longer line must not grow without bound. */
const MAX_LINE_CHARS = 1_048_576;

export async function* parseNdjsonValues<R>(
  body: AsyncIterable<Buffer>,
  validate: (value: unknown, path: readonly PropertyKey[]) => ParsedRow<R>,
): AsyncGenerator<ParsedRow<R>> {
  const decoder = new StringDecoder('utf8');
  let carry = '';
  let line = 0;

  function parseLine(text: string): ParsedRow<R> | undefined {
    line++;
    if (line === 1 && text.charCodeAt(0) === 0xfeff) text = text.slice(1);
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
    const lines = (carry + decoder.write(bytes)).split('\n');
    carry = lines.pop()!;
    for (const text of lines) {
      const row = parseLine(text);
      if (row) yield row;
    }
    if (carry.length > MAX_LINE_CHARS) {
      throw new ValidationError('A line is too long to be a record', [
        { path: `lines.${line + 1}`, message: `Longer than ${MAX_LINE_CHARS} characters` },
      ]);
    }
  }
  const rest = carry + decoder.end();
  if (rest !== '') {
    const row = parseLine(rest);
    if (row) yield row;
  }
}
