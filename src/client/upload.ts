// A bulk file as a request body: its content type from its extension, its bytes streamed from
// disk as they are sent, so a 1,000,000-record file is never held in memory whole.
import { createReadStream } from 'node:fs';
import { stat } from 'node:fs/promises';
import { extname } from 'node:path';

/** The body formats POST /jobs takes, by file extension. */
const CONTENT_TYPES: Record<string, string> = {
  '.csv': 'text/csv',
  '.ndjson': 'application/x-ndjson',
  '.jsonl': 'application/x-ndjson',
  '.json': 'application/json',
};

export const UPLOAD_EXTENSIONS: readonly string[] = Object.keys(CONTENT_TYPES);

/** The content type for a file, or undefined when its extension is not one POST /jobs takes. */
export function contentTypeFor(path: string): string | undefined {
  return CONTENT_TYPES[extname(path).toLowerCase()];
}

export type UploadProgress = (sentBytes: number, totalBytes: number) => void;

export type FileBody = { body: AsyncIterable<Uint8Array>; size: number };

/** The file as a body stream that reports the bytes handed to the connection so far. */
export async function fileBody(path: string, onProgress?: UploadProgress): Promise<FileBody> {
  const { size } = await stat(path);
  const stream = createReadStream(path, { highWaterMark: 256 * 1024 });
  async function* counted(): AsyncGenerator<Uint8Array> {
    let sent = 0;
    for await (const chunk of stream as AsyncIterable<Buffer>) {
      sent += chunk.length;
      yield chunk;
      onProgress?.(sent, size);
    }
  }
  return { body: onProgress ? counted() : (stream as AsyncIterable<Uint8Array>), size };
}
