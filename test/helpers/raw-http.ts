// HTTP at the socket level, for what fetch cannot send: malformed requests, bodies that trickle,
// uploads cut off halfway. Also reads a process's resident memory.
import { connect, type Socket } from 'node:net';
import { readFileSync } from 'node:fs';

export type RawResponse = { status: number; headers: Record<string, string>; body: string; raw: string };

export function parseRawResponse(raw: string): RawResponse {
  const split = raw.indexOf('\r\n\r\n');
  const head = split === -1 ? raw : raw.slice(0, split);
  const [statusLine, ...lines] = head.split('\r\n');
  const headers: Record<string, string> = {};
  for (const line of lines) {
    const colon = line.indexOf(':');
    if (colon > 0) headers[line.slice(0, colon).trim().toLowerCase()] = line.slice(colon + 1).trim();
  }
  let body = split === -1 ? '' : raw.slice(split + 4);
  if (headers['transfer-encoding'] === 'chunked') {
    let decoded = '';
    let rest = body;
    for (;;) {
      const eol = rest.indexOf('\r\n');
      const size = parseInt(rest.slice(0, eol), 16);
      if (!size) break;
      decoded += rest.slice(eol + 2, eol + 2 + size);
      rest = rest.slice(eol + 2 + size + 2);
    }
    body = decoded;
  }
  return { status: Number(statusLine?.split(' ')[1]), headers, body, raw };
}

/** Opens a socket, lets `write` send on it, and resolves with everything read once the server closes it (or the first full response). */
export function rawExchange(port: number, write: (socket: Socket) => void | Promise<void>, { timeoutMs = 20_000 } = {}): Promise<RawResponse> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let raw = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer within ${timeoutMs} ms; read so far: ${raw.slice(0, 500)}`));
    }, timeoutMs);
    const finish = () => {
      clearTimeout(timer);
      socket.destroy();
      resolve(parseRawResponse(raw));
    };
    socket.on('data', (d) => {
      raw += d.toString();
      const parsed = parseRawResponse(raw);
      const length = Number(parsed.headers['content-length']);
      if (Number.isFinite(length) && Buffer.byteLength(parsed.body) >= length) finish();
    });
    socket.on('close', finish);
    socket.on('error', () => undefined);
    socket.on('connect', () => {
      Promise.resolve(write(socket)).catch(() => undefined);
    });
  });
}

/** Sends a request as it is, bytes and all. */
export function rawRequest(port: number, text: string | Buffer): Promise<RawResponse> {
  return rawExchange(port, (socket) => {
    socket.write(text);
  });
}

/** Resident set size of a process, in bytes. */
export function rssBytes(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
  if (!match) throw new Error(`no VmRSS for ${pid}`);
  return Number(match[1]) * 1024;
}

/** The contract's error body: {"error": {code, message, details?}, "request_id"} and nothing that leaks. */
export function isContractError(body: unknown): boolean {
  if (!body || typeof body !== 'object') return false;
  const { error, request_id } = body as { error?: { code?: unknown; message?: unknown }; request_id?: unknown };
  return (
    typeof request_id === 'string' &&
    !!error &&
    typeof error.code === 'string' &&
    typeof error.message === 'string' &&
    !/\n\s+at |\/work\/|node_modules|\.ts:\d/.test(JSON.stringify(body))
  );
}
