// Redis work per prediction. INFO commandstats before and after a load step gives every
// command Redis ran; Redis counts the commands a Lua script runs (BullMQ keeps its logic in
// EVALSHA scripts) as well as the EVALSHA itself. A short MONITOR census, run apart from the
// timed steps because MONITOR slows Redis, splits them into what clients send (network round
// trips) and what scripts run inside Redis.
import { Redis } from 'ioredis';

export type CommandStats = Map<string, { calls: number; usec: number }>;

export async function readCommandStats(client: Redis): Promise<CommandStats> {
  const text = await client.info('commandstats');
  const stats: CommandStats = new Map();
  for (const line of text.split('\n')) {
    const match = /^cmdstat_([^:]+):calls=(\d+),usec=(\d+)/.exec(line.trim());
    if (match) stats.set(match[1]!, { calls: Number(match[2]), usec: Number(match[3]) });
  }
  return stats;
}

export type CommandDelta = {
  /** Every command Redis ran, script-internal ones included; the bench's own INFO excluded. */
  total: number;
  /** Redis CPU time spent in commands over the step, in microseconds. */
  usec: number;
  byCommand: Record<string, number>;
};

export function diffCommandStats(before: CommandStats, after: CommandStats): CommandDelta {
  let total = 0;
  let usec = 0;
  const byCommand: Record<string, number> = {};
  for (const [name, a] of after) {
    if (name === 'info') continue;
    const b = before.get(name) ?? { calls: 0, usec: 0 };
    const calls = a.calls - b.calls;
    if (calls <= 0) continue;
    byCommand[name] = calls;
    total += calls;
    usec += a.usec - b.usec;
  }
  return { total, usec, byCommand: sortByCount(byCommand) };
}

export type MonitorCensus = {
  /** Commands clients sent (one network round trip each, pipelining aside). */
  client: number;
  /** Commands run inside Lua scripts. */
  script: number;
  clientByCommand: Record<string, number>;
  stop: () => Promise<void>;
};

/** Starts MONITOR on its own connection and counts commands by source until stop(). */
export async function startMonitorCensus(url: string): Promise<MonitorCensus> {
  const client = new Redis(url, { maxRetriesPerRequest: 1 });
  client.on('error', () => undefined);
  const monitor = await client.monitor();
  const census: MonitorCensus = {
    client: 0,
    script: 0,
    clientByCommand: {},
    stop: async () => {
      monitor.disconnect();
      client.disconnect();
      census.clientByCommand = sortByCount(census.clientByCommand);
    },
  };
  monitor.on('monitor', (_time: string, args: string[], source: string) => {
    if (source === 'lua') {
      census.script++;
    } else {
      census.client++;
      const name = (args[0] ?? '?').toLowerCase();
      census.clientByCommand[name] = (census.clientByCommand[name] ?? 0) + 1;
    }
  });
  return census;
}

function sortByCount(counts: Record<string, number>): Record<string, number> {
  return Object.fromEntries(Object.entries(counts).sort((a, b) => b[1] - a[1]));
}
