// JSON bodies, {"records": [...]}, tokenized by stream-json as the bytes arrive. Each element
// of `records` is assembled on its own and handed on, so at most one record exists at a time,
// whatever the size of the array. Problems name the element: records.17.hour_of_day.
import { Readable, pipeline } from 'node:stream';
import { parser as jsonTokens } from 'stream-json';
import Assembler from 'stream-json/assembler.js';
import type { Token } from 'stream-json/core/parser.js';
import { ValidationError } from '../../shared/errors.ts';
import { validateRecord, type ParsedRow } from './parsed-row.ts';

type State = 'start' | 'key' | 'records-value' | 'records' | 'element' | 'end';

function shapeError(message: string, path = 'body'): ValidationError {
  return new ValidationError('The body must be {"records": [...]}', [{ path, message }]);
}

export async function* parseJson(body: AsyncIterable<Buffer>): AsyncGenerator<ParsedRow> {
  // Packed tokens only: one token per key, string or number, not its pieces.
  const tokens = jsonTokens.asStream({ packValues: true, streamValues: false });
  pipeline(Readable.from(body), tokens, () => undefined);
  const assembler = new Assembler();
  let state: State = 'start';
  let index = 0;
  let sawRecords = false;
  try {
    for await (const token of tokens as AsyncIterable<Token>) {
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
          assembler.consume(token);
          if (assembler.done) {
            yield validateRecord(assembler.current, ['records', index++]);
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
