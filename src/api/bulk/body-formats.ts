// The bodies POST /jobs takes, by media type, each with the parser that streams its rows.
import { parseCsv } from './parse-csv.ts';
import { parseJson } from './parse-json.ts';
import { parseNdjson } from './parse-ndjson.ts';
import type { ParsedRow } from './parsed-row.ts';

type BodyParser = (body: AsyncIterable<Buffer>) => AsyncGenerator<ParsedRow>;

const BODY_FORMATS: Readonly<Record<string, BodyParser>> = {
  'application/json': parseJson,
  'application/x-ndjson': parseNdjson,
  'application/ndjson': parseNdjson,
  'text/csv': parseCsv,
};

export const BODY_MEDIA_TYPES: readonly string[] = Object.keys(BODY_FORMATS);

/** The parser for a Content-Type header (its parameters ignored); undefined for any other type. */
export function bodyParserFor(contentType: string | undefined): BodyParser | undefined {
  const mediaType = (contentType ?? '').split(';')[0]!.trim().toLowerCase();
  return Object.hasOwn(BODY_FORMATS, mediaType) ? BODY_FORMATS[mediaType] : undefined;
}
