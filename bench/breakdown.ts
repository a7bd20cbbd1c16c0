// Where one request's milliseconds go at concurrency 1: sequential requests, each reply's
// Server-Timing header (queue = enqueue to pick-up, batch = pick-up to session.run, inference =
// session.run) set against the latency the client saw. The rest is the api (HTTP, validation,
// enqueue, reply over pub/sub) and the loopback network. queue and batch are stamped with
// Date.now() in two processes, so single values are whole milliseconds; means are still fair.
import { Agent, request } from 'node:http';
import { percentile, round } from './load.ts';

export type Part = { mean_ms: number; p50_ms: number; p99_ms: number };
export type LatencyBreakdown = { requests: number; total: Part; queue: Part; batch: Part; inference: Part; rest: Part };

function part(values: number[]): Part {
  const sorted = [...values].sort((a, b) => a - b);
  const mean = values.reduce((s, v) => s + v, 0) / Math.max(1, values.length);
  return { mean_ms: round(mean, 3), p50_ms: round(percentile(sorted, 0.5), 3), p99_ms: round(percentile(sorted, 0.99), 3) };
}

function post(agent: Agent, url: URL, body: string): Promise<{ status: number; timing: string; ms: number }> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const req = request(
      { agent, host: url.hostname, port: url.port, path: url.pathname, method: 'POST', headers: { 'content-type': 'application/json' } },
      (res) => {
        res.resume();
        res.on('end', () =>
          resolve({ status: res.statusCode ?? 0, timing: String(res.headers['server-timing'] ?? ''), ms: performance.now() - started }),
        );
      },
    );
    req.on('error', reject);
    req.end(body);
  });
}

export async function measureBreakdown(predictUrl: string, bodies: string[], count: number): Promise<LatencyBreakdown> {
  const agent = new Agent({ keepAlive: true, maxSockets: 1 });
  const url = new URL(predictUrl);
  const total: number[] = [];
  const queue: number[] = [];
  const batch: number[] = [];
  const inference: number[] = [];
  const rest: number[] = [];
  try {
    for (let i = 0; i < count; i++) {
      const r = await post(agent, url, bodies[i % bodies.length]!);
      if (r.status !== 200) continue;
      const dur = (name: string) => Number(new RegExp(`${name};dur=([\\d.]+)`).exec(r.timing)?.[1] ?? 0);
      const q = dur('queue');
      const b = dur('batch');
      const inf = dur('inference');
      total.push(r.ms);
      queue.push(q);
      batch.push(b);
      inference.push(inf);
      rest.push(r.ms - q - b - inf);
    }
  } finally {
    agent.destroy();
  }
  return { requests: total.length, total: part(total), queue: part(queue), batch: part(batch), inference: part(inference), rest: part(rest) };
}
