// The local Redis Cluster the bench's --cluster step runs on (test/helpers/redis-cluster.ts:
// three masters, three replicas, all on this machine), seen the way the single Redis is: INFO
// commandstats added up over the masters (the commands the service costs; replicas replay the
// writes, and their CPU is counted apart), and each node's pid for the CPU meter.
import { Redis } from 'ioredis';
import { startTestRedisCluster, type TestRedisCluster } from '../test/helpers/redis-cluster.ts';
import { readCommandStats, type CommandStats } from './redis-stats.ts';

export type BenchCluster = {
  cluster: TestRedisCluster;
  /** `host:port` of every node, as REDIS_CLUSTER_NODES takes them. */
  nodes: string[];
  /** Pid of each node by a name saying its role: redis-m1…, redis-r1…. */
  pids: Record<string, number>;
  /** INFO commandstats summed over the masters. */
  masterCommandStats: () => Promise<CommandStats>;
  close: () => Promise<void>;
};

export async function startBenchCluster(): Promise<BenchCluster> {
  const cluster = await startTestRedisCluster();
  const clients = cluster.nodes.map((node) => {
    const [host, port] = node.split(':');
    const client = new Redis({ host, port: Number(port), maxRetriesPerRequest: 1 });
    client.on('error', () => undefined);
    return client;
  });
  const masters: Redis[] = [];
  const pids: Record<string, number> = {};
  for (const client of clients) {
    const role = ((await client.role()) as [string])[0];
    const pid = Number(/process_id:(\d+)/.exec(await client.info('server'))?.[1] ?? 0);
    if (role === 'master') masters.push(client);
    const count = Object.keys(pids).filter((k) => k.startsWith(role === 'master' ? 'redis-m' : 'redis-r')).length;
    pids[`${role === 'master' ? 'redis-m' : 'redis-r'}${count + 1}`] = pid;
  }
  return {
    cluster,
    nodes: cluster.nodes,
    pids,
    masterCommandStats: async () => {
      const total: CommandStats = new Map();
      for (const stats of await Promise.all(masters.map((m) => readCommandStats(m)))) {
        for (const [name, s] of stats) {
          const t = total.get(name) ?? { calls: 0, usec: 0 };
          total.set(name, { calls: t.calls + s.calls, usec: t.usec + s.usec });
        }
      }
      return total;
    },
    close: async () => {
      for (const client of clients) client.disconnect();
      await cluster.close();
    },
  };
}
