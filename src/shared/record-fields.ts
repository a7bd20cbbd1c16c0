// A record encoding: the fields a model's records carry (instead of its graph's inputs) and how
// each becomes tensor columns. Written in a version's manifest, read by the worker to encode
// records (features.ts) and published with its snapshot, so the api validates records by the
// same declaration (recordSchemaFromFields) without holding the model.
import { z } from 'zod';

const FieldName = z.string().min(1).describe('the record field');
const Description = z.string().optional().describe('shown in the record schema');

const NumberFieldSchema = z.strictObject({
  name: FieldName,
  encoding: z.literal('number').describe('the value itself, as float32'),
  integer: z.boolean().optional(),
  minimum: z.number().optional(),
  exclusive_minimum: z.number().optional(),
  maximum: z.number().optional(),
  missing: z
    .literal('nan')
    .optional()
    .describe('null or an absent field is a missing value, encoded as NaN: tree models route it by their default branch'),
  description: Description,
});

const BooleanFieldSchema = z.strictObject({
  name: FieldName,
  encoding: z.literal('boolean').describe('1 for true, 0 for false'),
  description: Description,
});

const OneHotFieldSchema = z
  .strictObject({
    name: FieldName,
    encoding: z.literal('one_hot').describe('vocabulary.length + 1 columns: code i sets column i, any other value the unknown code'),
    vocabulary: z.array(z.string().min(1)).min(1),
    unknown_code: z.number().int().nonnegative(),
    max_length: z.number().int().positive().optional().describe('longest value a record may carry'),
    description: Description,
  })
  .refine((f) => f.unknown_code === f.vocabulary.length, {
    message: 'unknown_code must follow the vocabulary (its own column, after the known ones)',
    path: ['unknown_code'],
  })
  .refine((f) => new Set(f.vocabulary).size === f.vocabulary.length, {
    message: 'vocabulary has duplicates',
    path: ['vocabulary'],
  });

export const RecordFieldSchema = z.union([NumberFieldSchema, BooleanFieldSchema, OneHotFieldSchema]);
export type RecordField = z.infer<typeof RecordFieldSchema>;

/** How many tensor columns a field occupies. */
export function fieldColumns(field: RecordField): number {
  return field.encoding === 'one_hot' ? field.vocabulary.length + 1 : 1;
}

/** One field's value rule, as the field declares it. */
function valueSchema(field: RecordField): z.ZodType {
  let schema: z.ZodType;
  switch (field.encoding) {
    case 'number': {
      let n = z.number();
      if (field.integer) n = n.int();
      if (field.exclusive_minimum !== undefined) n = n.gt(field.exclusive_minimum);
      if (field.minimum !== undefined) n = n.min(field.minimum);
      if (field.maximum !== undefined) n = n.max(field.maximum);
      schema = field.missing === 'nan' ? n.nullable().optional() : n;
      break;
    }
    case 'boolean':
      schema = z.boolean();
      break;
    case 'one_hot':
      // A value outside the vocabulary is scored as unknown, never rejected.
      schema = field.max_length === undefined ? z.string().min(1) : z.string().min(1).max(field.max_length);
      break;
  }
  return field.description ? schema.describe(field.description) : schema;
}

/** A strict object of the declared fields: a wrong, missing or extra field is an issue whose path names it. */
export function recordSchemaFromFields(fields: readonly RecordField[]) {
  return z.strictObject(Object.fromEntries(fields.map((f) => [f.name, valueSchema(f)])));
}

/**
 * One field's value rule as a plain check, for values that come by the thousand (a protocol call's
 * columns): the same rule as valueSchema, without a parse result per value. Returns the problem, or
 * undefined when the value is valid. A test holds the two to the same answers.
 */
export function fieldValueCheck(field: RecordField): (value: unknown) => string | undefined {
  switch (field.encoding) {
    case 'number': {
      const { integer, minimum, exclusive_minimum: above, maximum } = field;
      const missing = field.missing === 'nan';
      return (v) => {
        if (missing && (v === null || v === undefined)) return undefined;
        if (typeof v !== 'number' || !Number.isFinite(v)) return 'Expected a finite number';
        if (integer && !Number.isInteger(v)) return 'Expected an integer';
        if (above !== undefined && !(v > above)) return `Too small: expected a number > ${above}`;
        if (minimum !== undefined && v < minimum) return `Too small: expected a number >= ${minimum}`;
        if (maximum !== undefined && v > maximum) return `Too big: expected a number <= ${maximum}`;
        return undefined;
      };
    }
    case 'boolean':
      return (v) => (typeof v === 'boolean' ? undefined : 'Expected a boolean');
    case 'one_hot': {
      const max = field.max_length;
      return (v) => {
        if (typeof v !== 'string' || v.length === 0) return 'Expected a non-empty string';
        if (max !== undefined && v.length > max) return `Too long: expected at most ${max} characters`;
        return undefined;
      };
    }
  }
}
