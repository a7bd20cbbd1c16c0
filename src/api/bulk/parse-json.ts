// JSON bodies, {"records": [...]}, tokenized by stream-json as the bytes arrive. Each element
// of `records` is assembled on its own and handed on, so at most one record exists at a time,
// whatever the size of the array. Problems name the element: records.17.hour_of_day. Fraud's
// bodies and every other model's (model-bodies.ts) are read here, each with its own validator.
//
// Memory stays a small constant whatever the body: strings, keys and numbers arrive in pieces
// and are packed here under a value limit, and an element is refused once it is larger than its
// limit or nested deeper than a record can be, before it is ever held whole.
import { Readable, pipeline } from 'node:stream';
import { parser as jsonTokens } from 'stream-json';
import Assembler from 'stream-json/assembler.js';
import type { Token } from 'stream-json/core/parser.js';
import { ValidationError } from '../../shared/errors.ts';
import { validateRecord, type ParsedRow, type RowValidator } from './parsed-row.ts';

type State = 'start' | 'key' | 'records-value' | 'records' | 'element' | 'end';

/** Longest key, string or number taken: far past any record field (an id is 128 characters). */
export const MAX_VALUE_CHARS = 4096;
/** Largest element of `records`, counted in characters of its keys and values. */
export const MAX_ELEMENT_CHARS = 65_536;
/** A record is an object of scalars; a little more depth than that is let through for zod to name. */
export const MAX_ELEMENT_DEPTH = 3;

/** How large one element of `records`, and one value in it, may be; past them the body is refused. */
export type JsonRecordLimits = { maxValueChars: number; maxElementChars: number; maxElementDepth: number };

const FRAUD_LIMITS: JsonRecordLimits = { maxValueChars: MAX_VALUE_CHARS, maxElementChars: MAX_ELEMENT_CHARS, maxElementDepth: MAX_ELEMENT_DEPTH };

const PACKED = { endKey: 'keyValue', endString: 'stringValue', endNumber: 'numberValue' } as const;

/**
 * Packs stream-json's pieces (startString, stringChunk…, endString) into single tokens, each value
 * refused once longer than maxValueChars instead of growing with the body. Returns the token to
 * act on, or undefined while a value is still arriving. A plain function called from the parse
 * loop, not a generator around it: one more async step per token made parsing twice as slow.
 */
function valuePacker(maxValueChars: number): (piece: Token) => Token | undefined {
  let text = '';
  return (piece) => {
    switch (piece.name) {
      case 'startKey':
      case 'startString':
      case 'startNumber':
        text = '';
        return undefined;
      case 'stringChunk':
      case 'numberChunk':
        text += piece.value;
        if (text.length > maxValueChars) {
          throw new ValidationError('A value in the body is too long', [
            { path: 'body', message: `A key, string or number is longer than ${maxValueChars} characters` },
          ]);
        }
        return undefined;
      case 'endKey':
      case 'endString':
      case 'endNumber': {
        const packed: Token = { name: PACKED[piece.name], value: text };
        text = '';
        return packed;
      }
      default:
        return piece;
    }
  };
}

function tokenChars(token: Token): number {
  return 1 + ('value' in token && typeof token.value === 'string' ? token.value.length : 0);
}

function shapeError(message: string, path = 'body'): ValidationError {
  return new ValidationError('The body must be {"records": [...]}', [{ path, message }]);
}

/** Fraud's records. */
export function parseJson(body: AsyncIterable<Buffer>): AsyncGenerator<ParsedRow> {
  return parseJsonRecords(body, validateRecord, FRAUD_LIMITS);
}

/** Each element of `records`, handed to `validate` with its path (['records', i]) as it completes. */
export async function* parseJsonRecords<R>(
  body: AsyncIterable<Buffer>,
  validate: RowValidator<R>,
  { maxValueChars, maxElementChars, maxElementDepth }: JsonRecordLimits,
): AsyncGenerator<ParsedRow<R>> {
  // Pieces only, packed by valuePacker under a limit: stream-json's own packing has none.
  const tokens = jsonTokens.asStream({ packValues: false, streamValues: true });
  pipeline(Readable.from(body), tokens, () => undefined);
  const assembler = new Assembler();
  let state: State = 'start';
  let index = 0;
  let sawRecords = false;
  let elementChars = 0;
  let depth = 0;
  try {
    const pack = valuePacker(maxValueChars);
    for await (const piece of tokens as AsyncIterable<Token>) {
      const token = pack(piece);
      if (!token) continue;
      switch (state) {
        case 'start':
          if (token.name !== 'startObject') throw shapeError('Expected an object');
          state = 'key';
          break;
        case 'key':
          if (token.name === 'endObject') {
            state = 'end';
          } else if (token.name === 'keyValue') {
            if (token.value !== 'records') throw shapeError(`Unknown field "${token.value}"`, token.value);
            if (sawRecords) throw shapeError('"records" appears twice', 'records');
            sawRecords = true;
            state = 'records-value';
          }
          break;
        case 'records-value':
          if (token.name !== 'startArray') throw shapeError('Expected an array', 'records');
          state = 'records';
          break;
        case 'records':
        case 'element':
          if (state === 'records' && token.name === 'endArray') {
            state = 'key';
            break;
          }
          if (state === 'records') {
            elementChars = 0;
            depth = 0;
          }
          elementChars += tokenChars(token);
          if (token.name === 'startObject' || token.name === 'startArray') depth++;
          if (token.name === 'endObject' || token.name === 'endArray') depth--;
          if (elementChars > maxElementChars || depth > maxElementDepth) {
            throw new ValidationError('A record is too large or too deeply nested', [
              { path: `records.${index}`, message: `Larger than ${maxElementChars} characters or nested deeper than ${maxElementDepth}` },
            ]);
          }
          assembler.consume(token);
          if (assembler.done) {
            yield validate(assembler.current, ['records', index++]);
            state = 'records';
          } else {
            state = 'element';
          }
          break;
        case 'end':
          break;
      }
    }
  } catch (err) {
    if (err instanceof ValidationError) throw err;
    // stream-json reports malformed JSON as a plain Error; a limit or abort error passes through.
    if (err instanceof Error && err.constructor === Error) {
      throw new ValidationError('The body is not valid JSON', [{ path: 'body', message: err.message }]);
    }
    throw err;
  } finally {
    tokens.destroy();
  }
  if (!sawRecords) throw shapeError('Required', 'records');
  if (state !== 'end') throw shapeError('The body ended early');
}
