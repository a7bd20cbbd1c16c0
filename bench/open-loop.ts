// Open-loop HTTP load: calls leave at a fixed rate whatever the server does, so a stall shows as
// the latency of every call that should have left during it (no coordinated omission, which a
// closed loop such as autocannon has by design). Latency runs from the moment a call was due, not
// from when the generator got round to sending it. Calls go out on keep-alive sockets, as many as
// are needed at once.
import { Agent, request } from 'node:http';

export type OpenLoopOptions = {
  url: string;
  /** Calls per second. */
  rate: number;
  bodies: string[];
  headers?: Record<string, string>;
  /** A call not answered within this long counts as failed. */
  timeoutMs?: number;
};

export type OpenLoopCall = { dueAt: number; ms: number; status: number };

export type OpenLoop = {
  /** Stops sending, waits for the calls in flight, returns every call. */
  stop: () => Promise<OpenLoopCall[]>;
};

/** How often the scheduler wakes to send what is due: several calls per wake at high rates. */
const TICK_MS = 1;

export function startOpenLoop(options: OpenLoopOptions): OpenLoop {
  const target = new URL(options.url);
  const agent = new Agent({ keepAlive: true, maxSockets: 1024 });
  const calls: OpenLoopCall[] = [];
  const inFlight = new Set<Promise<void>>();
  const interval = 1000 / options.rate;
  const started = performance.now();
  let sent = 0;
  let stopped = false;

  const send = (dueAt: number, body: string) => {
    const call = new Promise<void>((resolve) => {
      const req = request(
        {
          agent,
          host: target.hostname,
          port: target.port,
          path: target.pathname + target.search,
          method: 'POST',
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body), ...options.headers },
          timeout: options.timeoutMs ?? 10_000,
        },
        (res) => {
          res.resume();
          res.on('end', () => {
            calls.push({ dueAt, ms: performance.now() - dueAt, status: res.statusCode ?? 0 });
            resolve();
          });
        },
      );
      req.on('timeout', () => req.destroy(new Error('timeout')));
      req.on('error', () => {
        calls.push({ dueAt, ms: performance.now() - dueAt, status: 0 });
        resolve();
      });
      req.end(body);
    });
    inFlight.add(call);
    void call.then(() => inFlight.delete(call));
  };

  const tick = () => {
    if (stopped) return;
    const now = performance.now();
    // Every call due by now leaves now, each stamped with the moment it was due.
    while (started + sent * interval <= now) {
      send(started + sent * interval, options.bodies[sent % options.bodies.length]!);
      sent++;
    }
    setTimeout(tick, TICK_MS);
  };
  tick();

  return {
    stop: async () => {
      stopped = true;
      while (inFlight.size > 0) await Promise.all([...inFlight]);
      agent.destroy();
      return calls;
    },
  };
}

export type LatencySummary = { calls: number; failed: number; p50_ms: number; p99_ms: number; max_ms: number };

/** Calls due within [from, to) (performance.now() ms); failed = not 2xx. */
export function summarize(calls: readonly OpenLoopCall[], from = -Infinity, to = Infinity): LatencySummary {
  const window = calls.filter((c) => c.dueAt >= from && c.dueAt < to);
  const ms = window
    .filter((c) => c.status >= 200 && c.status < 300)
    .map((c) => c.ms)
    .sort((a, b) => a - b);
  const at = (q: number) => (ms.length === 0 ? 0 : round(ms[Math.min(ms.length - 1, Math.floor(q * ms.length))]!));
  return { calls: window.length, failed: window.length - ms.length, p50_ms: at(0.5), p99_ms: at(0.99), max_ms: at(1) };
}

function round(v: number): number {
  return Math.round(v * 100) / 100;
}
