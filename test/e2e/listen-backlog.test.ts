// 2,048 clients connecting at once (LISTEN_BACKLOG): every one is answered within its timeout,
// 200, 429 (past the queue bound) or 504, never left without an answer. With Node's default
// backlog of 511 the kernel drops the SYNs past it, and those clients wait out their SYN retries
// (1 s, 3 s, 7 s, ...) before they are even accepted. Raw sockets, one request each, opened in
// the same turn so they reach the listen queue together.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { connect } from 'node:net';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';

const CLIENTS = 2048;

function hasSs(): boolean {
  try {
    execFileSync('ss', ['-V'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}
/** Each client's own timeout, and the calls' timeout_ms: an answer comes within it or not at all. */
const CLIENT_TIMEOUT_MS = 10_000;
const CALL_TIMEOUT_MS = 5_000;

/** One connection, one request; resolves with the status code, or 0 when nothing came back in time. */
function call(port: number, body: string): Promise<number> {
  return new Promise((resolve) => {
    const socket = connect({ port, host: '127.0.0.1' });
    let head = '';
    const done = (status: number) => {
      clearTimeout(timer);
      socket.destroy();
      resolve(status);
    };
    const timer = setTimeout(() => done(0), CLIENT_TIMEOUT_MS);
    socket.on('connect', () => {
      socket.write(
        `POST /predict?timeout_ms=${CALL_TIMEOUT_MS} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n` +
          `content-length: ${Buffer.byteLength(body)}\r\nconnection: close\r\n\r\n${body}`,
      );
    });
    socket.on('data', (d: Buffer) => {
      head += d.toString('latin1');
      const status = /^HTTP\/1\.1 (\d{3})/.exec(head);
      if (status) done(Number(status[1]));
    });
    socket.on('error', () => done(0));
  });
}

describe('a burst of 2,048 connections at once', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let api: ServiceProcess;
  let worker: ServiceProcess;

  before(async () => {
    redis = await startTestRedis();
    const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'backlog' };
    [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  });
  after(async () => {
    await Promise.all([api, worker].filter(Boolean).map((p) => p.stop()));
    await redis?.close();
  });

  test(
    'the api listens with LISTEN_BACKLOG (4096 by default), as the kernel reports it',
    { skip: !hasSs() && 'ss (iproute2) is not installed' },
    () => {
      // For a listening socket, ss's Send-Q is its backlog (capped by net.core.somaxconn).
      const out = execFileSync('ss', ['-ltnH', `sport = :${api.port}`], { encoding: 'utf8' });
      const backlog = Number(out.trim().split(/\s+/)[2]);
      const somaxconn = Number(readFileSync('/proc/sys/net/core/somaxconn', 'utf8'));
      assert.equal(backlog, Math.min(4096, somaxconn), out);
    },
  );

  test('every client is answered with 200, 429 or 504 within its timeout', async () => {
    const bodies = generateFraudRecords(3, 64).map((r) => JSON.stringify(r));
    const statuses = await Promise.all(Array.from({ length: CLIENTS }, (_, i) => call(api.port, bodies[i % bodies.length]!)));
    const counts: Record<string, number> = {};
    for (const s of statuses) counts[s] = (counts[s] ?? 0) + 1;
    assert.equal(counts['0'] ?? 0, 0, `clients with no answer within ${CLIENT_TIMEOUT_MS} ms: ${JSON.stringify(counts)}`);
    assert.ok(
      Object.keys(counts).every((s) => ['200', '429', '504'].includes(s)),
      `statuses: ${JSON.stringify(counts)}`,
    );
    assert.ok((counts['200'] ?? 0) > 0, JSON.stringify(counts));
  });
});
