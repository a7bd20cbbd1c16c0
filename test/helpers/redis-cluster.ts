// A real local Redis Cluster for one test file: six redis-server processes (three masters,
// three replicas) on free ports with their own data dirs, joined by `redis-cli --cluster
// create`. A short cluster-node-timeout keeps failovers to a few seconds.
import { execFile, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { Redis } from 'ioredis';
import { freePort } from './ports.ts';
import { waitFor } from './wait.ts';

const HOST = '127.0.0.1';
const NODE_COUNT = 6;

export type ClusterNode = { host: string; port: number; address: string };

export type TestRedisCluster = {
  /** `host:port` of every node, masters and replicas, as REDIS_CLUSTER_NODES takes them. */
  nodes: string[];
  /** The node serving a key's slot now. */
  masterOf: (key: string) => Promise<string>;
  /** The replicas of a master, by `host:port`. */
  replicasOf: (master: string) => Promise<string[]>;
  /** The redis-server process of a node, for signals (SIGSTOP makes a node unresponsive without a failover, for a while). */
  processOf: (address: string) => ChildProcess;
  /**
   * SIGKILLs a master (the one serving `key`'s slot, or the first master) and resolves once
   * one of its replicas has taken over and every surviving node says cluster_state:ok.
   */
  killMaster: (options?: { key?: string; timeoutMs?: number }) => Promise<{ killed: string; promoted: string }>;
  /** Every process killed, every data dir removed. */
  close: () => Promise<void>;
  /** The redis-server processes, for checks that none is left behind. */
  processes: () => ChildProcess[];
};

/** Distinct free ports: a client port and a cluster bus port per node (the bus default, port + 10000, may not exist). */
async function freePorts(count: number): Promise<number[]> {
  const ports = new Set<number>();
  while (ports.size < count) ports.add(await freePort());
  return [...ports];
}

/**
 * Ports for a cluster to be started later, and the `host:port` of its nodes: a process can be
 * pointed at a cluster before any node answers (startTestRedisCluster({ ports })).
 */
export async function reserveClusterPorts(): Promise<{ ports: number[]; nodes: string[] }> {
  const ports = await freePorts(NODE_COUNT * 2);
  return { ports, nodes: ports.slice(0, NODE_COUNT).map((port) => `${HOST}:${port}`) };
}

/** One short-lived connection per call: nodes come and go, and a dead node must not leave a client retrying. */
async function ask(address: string, ...command: [string, ...(string | number)[]]): Promise<unknown> {
  const [host, port] = address.split(':');
  const client = new Redis({ host, port: Number(port), lazyConnect: true, maxRetriesPerRequest: 0, retryStrategy: () => null, connectTimeout: 1000 });
  client.on('error', () => undefined);
  try {
    await client.connect();
    return await client.call(...command);
  } finally {
    client.disconnect();
  }
}

const cluster = async (address: string, subcommand: 'INFO' | 'NODES') => String(await ask(address, 'CLUSTER', subcommand));

type NodeLine = { id: string; address: string; flags: string[]; masterId: string };

function parseClusterNodes(text: string): NodeLine[] {
  return text
    .trim()
    .split('\n')
    .map((line) => {
      const [id, addr, flags, masterId] = line.split(' ');
      return { id: id!, address: addr!.split('@')[0]!, flags: flags!.split(','), masterId: masterId! };
    });
}

async function clusterOk(address: string): Promise<boolean> {
  return /cluster_state:ok/.test(await cluster(address, 'INFO'));
}

export async function startTestRedisCluster({
  nodeTimeoutMs = 2000,
  ports: reserved,
}: { nodeTimeoutMs?: number; ports?: number[] } = {}): Promise<TestRedisCluster> {
  const root = mkdtempSync(join(tmpdir(), 'scoring-redis-cluster-'));
  const ports = reserved ?? (await freePorts(NODE_COUNT * 2));
  if (ports.length !== NODE_COUNT * 2) throw new Error(`a cluster takes ${NODE_COUNT * 2} ports (reserveClusterPorts)`);
  const processes = new Map<string, ChildProcess>();

  const close = async () => {
    await Promise.all(
      [...processes.values()].map((proc) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return Promise.resolve();
        const exited = new Promise((resolve) => proc.once('exit', resolve));
        proc.kill('SIGKILL');
        return exited;
      }),
    );
    rmSync(root, { recursive: true, force: true });
  };

  try {
    for (let i = 0; i < NODE_COUNT; i++) {
      const port = ports[i]!;
      const dir = join(root, String(port));
      mkdirSync(dir);
      // prettier-ignore
      const proc = spawn('redis-server', [
        '--port', String(port), '--cluster-port', String(ports[NODE_COUNT + i]), '--bind', HOST,
        '--cluster-enabled', 'yes', '--cluster-config-file', join(dir, 'nodes.conf'),
        '--cluster-node-timeout', String(nodeTimeoutMs), '--dir', dir, '--save', '', '--appendonly', 'no',
        // Replicas sync at once instead of after diskless sync's default 5 s wait for company.
        '--repl-diskless-sync-delay', '0',
      ], { stdio: 'ignore' });
      proc.once('error', (err) => {
        throw new Error(`redis-server could not start (apt-get install redis-server): ${err.message}`);
      });
      processes.set(`${HOST}:${port}`, proc);
    }
    const nodes = [...processes.keys()];
    for (const node of nodes) await waitFor(async () => (await ask(node, 'PING')) === 'PONG', { what: `redis-server ${node}` });

    await promisify(execFile)('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', '1', '--cluster-yes'], { timeout: 30_000 });
    await waitFor(
      async () => {
        for (const node of nodes) if (!(await clusterOk(node))) return false;
        // Every replica has synced with its master, so a failover has something to promote.
        const lines = parseClusterNodes(await cluster(nodes[0]!, 'NODES'));
        const replicas = lines.filter((l) => l.flags.includes('slave'));
        if (replicas.length !== NODE_COUNT / 2) return false;
        for (const r of replicas) if (!/master_link_status:up/.test(String(await ask(r.address, 'INFO', 'replication')))) return false;
        return true;
      },
      { timeoutMs: 30_000, what: 'cluster_state:ok on every node, replicas in sync' },
    );

    const alive = () => nodes.filter((n) => processes.get(n)!.exitCode === null && processes.get(n)!.signalCode === null);

    const masterOf = async (key: string) => {
      const slot = Number(await ask(alive()[0]!, 'CLUSTER', 'KEYSLOT', key));
      const slots = (await ask(alive()[0]!, 'CLUSTER', 'SLOTS')) as [number, number, [string, number]][];
      const range = slots.find(([from, to]) => slot >= from && slot <= to);
      if (!range) throw new Error(`no node serves slot ${slot}`);
      return `${range[2][0]}:${range[2][1]}`;
    };

    const killMaster: TestRedisCluster['killMaster'] = async ({ key, timeoutMs = 30_000 } = {}) => {
      const lines = parseClusterNodes(await cluster(alive()[0]!, 'NODES'));
      const killedAddress = key ? await masterOf(key) : lines.find((l) => l.flags.includes('master') && !l.flags.includes('fail'))!.address;
      const killed = lines.find((l) => l.address === killedAddress)!;
      const replicas = lines.filter((l) => l.masterId === killed.id).map((l) => l.address);
      if (replicas.length === 0) throw new Error(`${killedAddress} has no replica to promote`);
      const proc = processes.get(killedAddress)!;
      const exited = new Promise((resolve) => proc.once('exit', resolve));
      proc.kill('SIGKILL');
      await exited;
      const promoted = await waitFor(
        async () => {
          for (const replica of replicas) {
            const role = (await ask(replica, 'ROLE')) as [string];
            if (role[0] !== 'master') continue;
            for (const node of alive()) if (!(await clusterOk(node))) return undefined;
            return replica;
          }
          return undefined;
        },
        { timeoutMs, intervalMs: 100, what: `a replica of ${killedAddress} to take over` },
      );
      return { killed: killedAddress, promoted };
    };

    const replicasOf = async (master: string) => {
      const lines = parseClusterNodes(await cluster(alive()[0]!, 'NODES'));
      const id = lines.find((l) => l.address === master)?.id;
      return lines.filter((l) => l.masterId === id).map((l) => l.address);
    };
    const processOf = (address: string) => {
      const proc = processes.get(address);
      if (!proc) throw new Error(`no node ${address}`);
      return proc;
    };

    return { nodes, masterOf, replicasOf, processOf, killMaster, close, processes: () => [...processes.values()] };
  } catch (err) {
    await close();
    throw err;
  }
}
