// What every bulk body parser yields, and the pieces they share: the byte limit enforced while
// streaming, and record validation that names the row a problem is on.
import { BulkRecordSchema, type BulkRecord } from '../../shared/schemas/record.ts';
import { PayloadTooLargeError, issuesToDetails, type ErrorDetail } from '../../shared/errors.ts';
import { acceptBulkRecord } from './record-check.ts';

/** One row of a body: a valid record (fraud's, unless R says another model's), or the problems that make it invalid. */
export type ParsedRow<R = BulkRecord> = { ok: true; record: R } | { ok: false; details: ErrorDetail[] };

/** Checks one decoded value at `path` (e.g. ['lines', 3]): the record, or its problems. */
export type RowValidator<R> = (value: unknown, path: readonly PropertyKey[]) => ParsedRow<R>;

/** Validates one record; problems carry `path` (e.g. ['lines', 18] or ['records', 17]) before the field. */
export function validateRecord(value: unknown, path: readonly PropertyKey[]): ParsedRow {
  const record = acceptBulkRecord(value);
  if (record) return { ok: true, record };
  const parsed = BulkRecordSchema.safeParse(value);
  if (parsed.success) return { ok: true, record: parsed.data };
  return { ok: false, details: issuesToDetails(parsed.error.issues, path) };
}

/**
 * Passes a body through, counting its bytes; throws PayloadTooLargeError past maxBytes, so a
 * streamed body is refused as soon as it is too large, without being read to its end.
 */
export async function* limitBytes(source: AsyncIterable<Buffer | string>, maxBytes: number): AsyncGenerator<Buffer> {
  let seen = 0;
  for await (const chunk of source) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : chunk;
    seen += buffer.length;
    if (seen > maxBytes) throw new PayloadTooLargeError(`The body is larger than ${maxBytes} bytes`);
    yield buffer;
  }
}
