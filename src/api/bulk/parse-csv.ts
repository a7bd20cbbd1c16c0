// CSV bodies with a header row naming the record's fields, parsed by csv-parse as the bytes
// arrive. Cells are text, so each is read as its field's type (numbers, true/false or 1/0)
// before the same record validation as the other formats; a cell that does not read stays text
// and the validator names it. Line numbers count the header as line 1.
import { parse, CsvError } from 'csv-parse';
import { Readable, pipeline } from 'node:stream';
import { ValidationError, type ErrorDetail } from '../../shared/errors.ts';
import { validateRecord, type ParsedRow, type RowValidator } from './parsed-row.ts';

const NUMBER_FIELDS = new Set(['transaction_amount', 'hour_of_day', 'days_since_last_transaction']);
const REQUIRED_FIELDS = ['transaction_amount', 'merchant_category', 'card_present', 'hour_of_day', 'days_since_last_transaction'];
const KNOWN_FIELDS = new Set([...REQUIRED_FIELDS, 'id']);
/** Longest line (and so cell) taken: a record is ~150 bytes; csv-parse refuses a longer one before it grows. */
export const MAX_RECORD_CHARS = 65_536;
const NUMBER_TEXT = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

function readCell(field: string, text: string): unknown {
  if (NUMBER_FIELDS.has(field)) {
    if (text.trim() === '') return undefined;
    return NUMBER_TEXT.test(text) ? Number(text) : text;
  }
  if (field === 'card_present') {
    const t = text.trim().toLowerCase();
    if (t === 'true' || t === '1') return true;
    if (t === 'false' || t === '0') return false;
    return t === '' ? undefined : text;
  }
  if (field === 'id' && text === '') return undefined;
  return text;
}

/** What a CSV body's header may and must name, and how a cell of each column is read. */
export type CsvColumns = {
  known: ReadonlySet<string>;
  required: readonly string[];
  readCell: (field: string, text: string) => unknown;
};

function checkHeader(header: string[], columns: CsvColumns): void {
  const details: ErrorDetail[] = [];
  const seen = new Set<string>();
  for (const name of header) {
    if (!columns.known.has(name)) details.push({ path: `header.${name}`, message: `Unknown field "${name}"` });
    else if (seen.has(name)) details.push({ path: `header.${name}`, message: `Field "${name}" appears twice` });
    seen.add(name);
  }
  for (const name of columns.required) {
    if (!seen.has(name)) details.push({ path: `header.${name}`, message: `Required column "${name}" is missing` });
  }
  if (details.length > 0) throw new ValidationError('The CSV header row is not valid', details);
}

/** Fraud's records, a column per field. */
export function parseCsv(body: AsyncIterable<Buffer>): AsyncGenerator<ParsedRow> {
  return parseCsvRows(body, { known: KNOWN_FIELDS, required: REQUIRED_FIELDS, readCell }, validateRecord, MAX_RECORD_CHARS);
}

/**
 * Rows under a header row, each read cell by cell and handed to `validate` with its line number.
 * maxRecordChars bounds a line (csv-parse refuses it before it grows); undefined leaves csv-parse's default.
 */
export async function* parseCsvRows<R>(
  body: AsyncIterable<Buffer>,
  columns: CsvColumns,
  validate: RowValidator<R>,
  maxRecordChars: number | undefined,
): AsyncGenerator<ParsedRow<R>> {
  const parser = parse({
    bom: true,
    info: true,
    skip_empty_lines: true,
    relax_column_count: false,
    ...(maxRecordChars === undefined ? {} : { max_record_size: maxRecordChars }),
  });
  // pipeline, not pipe: an error of the body (too large, aborted) must reach the reader below.
  pipeline(Readable.from(body), parser, () => undefined);
  let header: string[] | undefined;
  try {
    for await (const { record, info } of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      if (!header) {
        header = record.map((h) => h.trim());
        checkHeader(header, columns);
        continue;
      }
      const value: Record<string, unknown> = {};
      for (let i = 0; i < header.length; i++) {
        const field = header[i]!;
        const cell = columns.readCell(field, record[i] ?? '');
        if (cell !== undefined) value[field] = cell;
      }
      yield validate(value, ['lines', info.lines]);
    }
  } catch (err) {
    if (err instanceof CsvError) {
      const line = (err as CsvError & { lines?: number }).lines;
      throw new ValidationError('The body is not valid CSV', [{ path: line ? `lines.${line}` : 'body', message: err.message }]);
    }
    throw err;
  } finally {
    parser.destroy();
  }
  if (!header) throw new ValidationError('The CSV body has no header row', [{ path: 'header', message: 'Required' }]);
}
