// Bulk bodies for any model but fraud: the same three formats as fraud's (JSON {"records": [...]},
// NDJSON, CSV with a header row), streamed the same way, each record validated against the schema
// built from the pinned version's record fields (its manifest's, or a booster's feature_names) or
// else its signature, plus the optional `id`. Problems name the line or index and the field, as
// fraud's do. CSV takes only models whose inputs are all scalars: a cell holds one value, and an
// input of k values per record has no column of its own.
import { z } from 'zod';
import { ValidationError, issuesToDetails } from '../../shared/errors.ts';
import { recordSchemaFromSignature, recordValueShape, type ElementType, type ModelSignature } from '../../shared/model-signature.ts';
import { recordSchemaFromFields, type RecordField } from '../../shared/record-fields.ts';
import { parseCsvRows } from './parse-csv.ts';
import { MAX_ELEMENT_DEPTH, parseJsonRecords, type JsonRecordLimits } from './parse-json.ts';
import { parseNdjsonLines } from './parse-ndjson.ts';
import type { ParsedRow, RowValidator } from './parsed-row.ts';

/** Far more than any record the service takes (a model's input may be an array); a longer NDJSON line or CSV record must not grow without bound. */
const MAX_LINE_CHARS = 1_048_576;

/** A validated record of a generic model, with the client's optional id. */
export type ModelRecord = Record<string, unknown> & { id?: string };
export type ModelRow = ParsedRow<ModelRecord>;
type Validate = RowValidator<ModelRecord>;
type ModelBodyParser = (body: AsyncIterable<Buffer>) => AsyncGenerator<ModelRow>;

/** What a version's records are: its record fields when it has them, else its graph's inputs. */
export type RecordForm = Pick<ModelSignature, 'inputs'> | { fields: readonly RecordField[] };

/** The record schema of a version, with the `id` every bulk record may carry. */
export function bulkRecordSchema(form: RecordForm) {
  const schema = 'fields' in form ? recordSchemaFromFields(form.fields) : recordSchemaFromSignature(form);
  return schema.extend({ id: z.string().min(1).max(128).optional() });
}

function validator(form: RecordForm): Validate {
  const schema = bulkRecordSchema(form);
  return (value, path) => {
    const parsed = schema.safeParse(value);
    if (parsed.success) return { ok: true, record: parsed.data as ModelRecord };
    return { ok: false, details: issuesToDetails(parsed.error.issues as Parameters<typeof issuesToDetails>[0], path) };
  };
}

/**
 * JSON's limits for a model's records: an element as large as an NDJSON line may be (an input may
 * be an array of thousands of values), nested as deep as fraud's (a record holds scalars and 1-D
 * arrays: the service takes inputs of shape [N], [N,1] or [N,k]).
 */
const JSON_LIMITS: JsonRecordLimits = { maxValueChars: MAX_LINE_CHARS, maxElementChars: MAX_LINE_CHARS, maxElementDepth: MAX_ELEMENT_DEPTH };

const NUMBER_TEXT = /^\s*[-+]?(\d+\.?\d*|\.\d+)([eE][-+]?\d+)?\s*$/;

/** A cell as its input's element type; text that does not read stays text, so the validator names it. */
function readCell(type: ElementType | 'id', text: string): unknown {
  if (type === 'string') return text;
  if (text.trim() === '') return undefined;
  if (type === 'id') return text;
  if (type === 'bool') {
    const t = text.trim().toLowerCase();
    if (t === 'true' || t === '1') return true;
    if (t === 'false' || t === '0') return false;
    return text;
  }
  return NUMBER_TEXT.test(text) ? Number(text) : text;
}

/** Why a model's records cannot come as CSV, or undefined when they can. */
export function csvProblem(form: RecordForm): string | undefined {
  if ('fields' in form) return undefined;
  const arrays = form.inputs.filter((input) => {
    const shape = recordValueShape(input.shape);
    return 'kind' in shape && shape.kind === 'array';
  });
  if (arrays.length === 0) return undefined;
  return `CSV takes only models whose inputs are all scalars; ${arrays.map((i) => `${i.name} [${i.shape.join(', ')}]`).join(', ')} takes several values per record: send JSON or NDJSON`;
}

/** A record field's cells read as the element type its value takes. */
const FIELD_CELL: Record<RecordField['encoding'], ElementType> = { number: 'float64', boolean: 'bool', one_hot: 'string' };

function csvRows(body: AsyncIterable<Buffer>, form: RecordForm, validate: Validate): AsyncGenerator<ModelRow> {
  const cells: [string, ElementType][] =
    'fields' in form ? form.fields.map((f) => [f.name, FIELD_CELL[f.encoding]]) : form.inputs.map((i) => [i.name, i.type]);
  const types = new Map<string, ElementType | 'id'>([...cells, ['id', 'id']]);
  // An empty cell of a field that may be missing is a missing value, not a missing column.
  const required =
    'fields' in form
      ? form.fields.filter((f) => !(f.encoding === 'number' && f.missing === 'nan')).map((f) => f.name)
      : [...types.keys()].filter((k) => k !== 'id');
  const columns = {
    known: new Set(types.keys()),
    required,
    readCell: (field: string, text: string) => readCell(types.get(field)!, text),
  };
  return parseCsvRows(body, columns, validate, MAX_LINE_CHARS);
}

/**
 * The parser of a body for a model of these records, by media type (as body-formats.ts names
 * them). Throws ValidationError for CSV when an input takes several values per record.
 */
export function modelBodyParser(mediaType: string, form: RecordForm): ModelBodyParser {
  const validate = validator(form);
  if (mediaType === 'application/json') return (body) => parseJsonRecords(body, validate, JSON_LIMITS);
  if (mediaType === 'text/csv') {
    const problem = csvProblem(form);
    if (problem) throw new ValidationError(problem, [{ path: 'body', message: problem }]);
    return (body) => csvRows(body, form, validate);
  }
  return (body) => parseNdjsonLines(body, validate, MAX_LINE_CHARS);
}
