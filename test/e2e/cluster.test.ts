// The service on a real local Redis Cluster (three masters, three replicas): two api processes,
// three workers, the online and bulk queues split in three shards each. Online calls and bulk jobs
// come out right; every key the service writes is hash-tagged; and the faults: processes started
// before the cluster wait and are not ready, a worker SIGKILLed mid-job, an api SIGTERMed under
// load, and a master SIGKILLed under load (its replica promoted).
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { Cluster } from 'ioredis';
import { reserveClusterPorts, startTestRedisCluster, type TestRedisCluster } from '../helpers/redis-cluster.ts';
import { startApi, startListening, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, request, type JsonResponse } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { loadModelVersion, type ModelVersion } from '../../src/worker/model-version.ts';
import { QUEUES, predictQueueName, shardQueueNames } from '../../src/shared/queues.ts';
import { bulkJobKey, bulkResultKey, modelsChangedChannel } from '../../src/shared/keys.ts';

const PREFIX = 'cluster-e2e';
const SHARDS = 3;
const CHUNK = 2000;
/** The online queue of fraud/1 (what /predict resolves to), in its three shards. */
const PREDICT_SHARDS = Array.from({ length: SHARDS }, (_, shard) => predictQueueName('fraud', 1, shard, SHARDS));
const BULK_SHARDS = shardQueueNames(QUEUES.bulk.name, SHARDS);

let cluster: TestRedisCluster | undefined;
let client: Cluster;
let env: Record<string, string>;
let model: ModelVersion;
const apis: ServiceProcess[] = [];
const workers: ServiceProcess[] = [];

before(async () => {
  model = await loadModelVersion('models/fraud/1', 'fraud', 1);
});

after(async () => {
  await Promise.all([...apis, ...workers].map((p) => p.stop('SIGKILL')));
  client?.disconnect();
  await cluster?.close();
  await model?.retire();
});

/** The shards an api sends to, online (fraud/1's) and bulk: it says so in its log at start. */
function shardsOf(api: ServiceProcess): [string, string] {
  const line = api
    .output()
    .split('\n')
    .find((l) => l.includes('sending to queue shards'));
  assert.ok(line, 'the api logs the shards it sends to');
  const { bulk, online_shard, online_shards } = JSON.parse(line) as { bulk: string; online_shard: number; online_shards: number };
  return [predictQueueName('fraud', 1, online_shard, online_shards), bulk];
}
const predictShardOf = (api: ServiceProcess) => shardsOf(api)[0];
const bulkShardOf = (api: ServiceProcess) => shardsOf(api)[1];

async function submitJob(api: ServiceProcess, records: number, seed: number): Promise<{ jobId: string; expected: Float32Array }> {
  const rows = generateFraudRecords(seed, records);
  const body = rows.map((r, i) => JSON.stringify({ ...r, id: `r-${i}` })).join('\n');
  // Scored here before the job is sent: the job must not run while the test is busy.
  const expected = await model.probabilities(rows);
  const res = await request(`${api.url}/jobs`, { method: 'POST', headers: { 'content-type': 'application/x-ndjson' }, body });
  assert.equal(res.status, 202, JSON.stringify(res.body));
  return { jobId: res.body.job_id, expected };
}

async function jobDone(jobId: string): Promise<number> {
  return Number(await client.hget(bulkJobKey(PREFIX, jobId), 'done'));
}

async function finalStatus(api: ServiceProcess, jobId: string, timeoutMs = 60_000): Promise<JsonResponse> {
  return waitFor(
    async () => {
      const res = await request(`${api.url}/jobs/${jobId}`);
      return ['completed', 'failed', 'cancelled'].includes(res.body.status) ? res : undefined;
    },
    { timeoutMs, intervalMs: 100, what: `job ${jobId} to end` },
  );
}

/** Every result once, in record order, each the probability the model gives its record. */
async function assertExactlyOncePerRecord(api: ServiceProcess, jobId: string, expected: Float32Array): Promise<void> {
  const status = await request(`${api.url}/jobs/${jobId}`);
  assert.equal(status.body.status, 'completed', JSON.stringify(status.body));
  assert.deepEqual(status.body.progress, { total: expected.length, done: expected.length });
  // GET /jobs lists it: the owner's listing lives on its own slot, written beside the job's keys.
  const listed = await request(`${api.url}/jobs?status=completed&limit=100`);
  assert.ok(
    listed.body.jobs.some((j: { job_id: string }) => j.job_id === jobId),
    JSON.stringify(listed.body),
  );
  const res = await fetch(`${api.url}/jobs/${jobId}/results`, { headers: { accept: 'application/x-ndjson' } });
  assert.equal(res.status, 200);
  const lines = (await res.text()).trim().split('\n');
  assert.equal(lines.length, expected.length);
  lines.forEach((line, i) => {
    const result = JSON.parse(line) as { index: number; id: string; fraud_probability: number };
    assert.equal(result.index, i, `result ${i} is out of order`);
    assert.equal(result.id, `r-${i}`);
    assert.equal(result.fraud_probability, expected[i], `record ${i}`);
  });
}

type Outcome = { status: number | 'error'; ms: number; error?: string };

/** `clients` callers per url, each calling again as soon as answered, until stop() is called. */
function load(urls: string[], clients: number, timeoutMs: number, headers: Record<string, string> = {}) {
  const outcomes: Outcome[] = [];
  let stopped = false;
  let inFlight = 0;
  const record = generateFraudRecords(77, 1)[0]!;
  const running = Promise.all(
    urls.flatMap((url) =>
      Array.from({ length: clients }, async () => {
        while (!stopped) {
          const started = performance.now();
          inFlight++;
          try {
            const res = await postJson(`${url}/predict?timeout_ms=${timeoutMs}`, record, headers);
            outcomes.push({ status: res.status, ms: res.ms });
          } catch (err) {
            outcomes.push({ status: 'error', ms: performance.now() - started, error: String((err as { cause?: unknown }).cause ?? err) });
            // A refused connection (the api has closed its port) ends this caller.
            if (/ECONNREFUSED/.test(String((err as { cause?: { code?: string } }).cause?.code))) return;
          } finally {
            inFlight--;
          }
        }
      }),
    ),
  );
  return {
    outcomes,
    inFlight: () => inFlight,
    /** No new calls from now on; the calls in flight go on. */
    halt: () => {
      stopped = true;
    },
    stop: async () => {
      stopped = true;
      await running;
    },
  };
}

const byStatus = (outcomes: Outcome[]) =>
  JSON.stringify(Object.fromEntries(Object.entries(Object.groupBy(outcomes, (o) => String(o.status))).map(([k, v]) => [k, v!.length])));

test('processes started before the cluster wait, say so, and are not ready until it serves', async () => {
  const reserved = await reserveClusterPorts();
  env = {
    REDIS_CLUSTER_NODES: reserved.nodes.join(','),
    QUEUE_PREFIX: PREFIX,
    ONLINE_QUEUE_SHARDS: String(SHARDS),
    BULK_QUEUE_SHARDS: String(SHARDS),
    BULK_CHUNK_SIZE: String(CHUNK),
    LOCK_DURATION_MS: '4000',
    STALLED_INTERVAL_MS: '2000',
    OTEL_SDK_DISABLED: 'true',
  };
  // LOG_LEVEL info on the apis: the line naming the shard each sends to.
  const [early, earlyWorker] = await Promise.all([startListening('api', { ...env, LOG_LEVEL: 'info' }), startListening('worker', env)]);
  apis.push(early);
  workers.push(earlyWorker);
  for (const p of [early, earlyWorker]) {
    await waitFor(() => /Redis unreachable; waiting for it before serving/.test(p.output()), { what: 'the waiting line' });
    assert.match(p.output(), new RegExp(`Redis Cluster ${reserved.nodes[0]}`), 'the line names the nodes it waits for');
    assert.equal((await request(`${p.url}/ready`)).status, 503);
    assert.equal((await request(`${p.url}/health`)).status, 200);
  }
  assert.equal((await postJson(`${early.url}/predict`, generateFraudRecords(1, 1)[0])).status, 503);

  cluster = await startTestRedisCluster({ ports: reserved.ports });
  client = new Cluster(
    cluster.nodes.map((n) => ({ host: n.split(':')[0], port: Number(n.split(':')[1]) })),
    {
      clusterRetryStrategy: () => 100,
      redisOptions: { maxRetriesPerRequest: 3 },
    },
  );
  client.on('error', () => undefined);
  for (const p of [early, earlyWorker]) {
    await waitFor(async () => (await request(`${p.url}/ready`)).status === 200, { timeoutMs: 20_000, what: 'ready once the cluster serves' });
    assert.match(p.output(), /Redis reachable; serving/);
  }

  const more = await Promise.all([startApi({ ...env, LOG_LEVEL: 'info' }), startWorker(env), startWorker(env)]);
  apis.push(more[0]);
  workers.push(more[1], more[2]);
  await waitFor(async () => (await request(`${early.url}/ready`)).body.workers === 3, { what: 'three live workers' });
});

test('the shards of each queue sit on three different masters', async () => {
  assert.ok(cluster);
  for (const names of [PREDICT_SHARDS, BULK_SHARDS]) {
    const masters = await Promise.all(names.map((name) => cluster!.masterOf(`${PREFIX}:${name}:wait`)));
    assert.equal(new Set(masters).size, SHARDS, `${names.join(', ')} on ${masters.join(', ')}`);
  }
});

test('online calls through both apis are scored right', async () => {
  const records = generateFraudRecords(11, 60);
  const expected = await model.probabilities(records);
  const responses = await Promise.all(records.map((r, i) => postJson(`${apis[i % 2]!.url}/predict`, r)));
  responses.forEach((res, i) => {
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.equal(res.body.fraud_probability, expected[i], `record ${i}`);
  });
  const batch = await postJson(`${apis[1]!.url}/predict/batch`, { records: records.slice(0, 25) });
  assert.equal(batch.status, 200);
  assert.deepEqual(
    batch.body.results.map((r: { fraud_probability: number }) => r.fraud_probability),
    Array.from(expected.subarray(0, 25)),
  );
});

test('a bulk job completes with exactly one result per record, in order', async () => {
  const { jobId, expected } = await submitJob(apis[0]!, 9 * CHUNK + 123, 12);
  const status = await finalStatus(apis[0]!, jobId);
  assert.equal(status.body.status, 'completed', JSON.stringify(status.body));
  await assertExactlyOncePerRecord(apis[1]!, jobId, expected);
});

test('every key the service wrote is hash-tagged', async () => {
  const keys = (await Promise.all(client.nodes('master').map((node) => node.keys(`${PREFIX}:*`)))).flat();
  assert.ok(keys.length > 0);
  assert.deepEqual(
    keys.filter((k) => !/\{[^}]+\}/.test(k)),
    [],
  );
});

test('every api subscribes to models-changed by sharded pub/sub, on the master of its slot', async () => {
  assert.ok(cluster);
  const channel = modelsChangedChannel(PREFIX);
  const master = await cluster.masterOf(channel);
  const node = client.nodes('master').find((n) => `${n.options.host}:${n.options.port}` === master);
  assert.ok(node, `a connection to ${master}`);
  // SHARDNUMSUB counts the sharded subscribers of the node asked: each api holds one on the slot's master.
  const [, subscribers] = (await node.call('PUBSUB', 'SHARDNUMSUB', channel)) as [string, number];
  assert.equal(subscribers, apis.length);
});

test('a worker SIGKILLed mid-job: the others finish it, exactly one result per record', async () => {
  // The others are frozen at first, so the chunk active when the kill lands is the victim's.
  const victim = workers.pop()!;
  for (const w of workers) assert.ok(w.proc.kill('SIGSTOP'));
  let thawed = false;
  const thaw = () => {
    if (!thawed) for (const w of workers) w.proc.kill('SIGCONT');
    thawed = true;
  };
  try {
    const { jobId, expected } = await submitJob(apis[1]!, 100 * CHUNK, 13);
    const active = `${PREFIX}:${bulkShardOf(apis[1]!)}:active`;
    // Frozen for a look: the kill lands only while the victim holds a chunk whose results are not written.
    const holdsUnwrittenChunk = async () => {
      if ((await jobDone(jobId)) === 0) return false;
      victim.proc.kill('SIGSTOP');
      for (const id of await client.lrange(active, 0, -1)) {
        if (!(await client.exists(bulkResultKey(PREFIX, jobId, Number(id.split('.').pop()))))) return true;
      }
      victim.proc.kill('SIGCONT');
      return false;
    };
    await waitFor(holdsUnwrittenChunk, { timeoutMs: 30_000, intervalMs: 2, what: 'a chunk in hand after the first' });
    await victim.stop('SIGKILL');
    const atKill = await jobDone(jobId);
    assert.ok(atKill > 0 && atKill < expected.length, `killed at ${atKill} of ${expected.length}`);
    thaw();
    workers.push(await startWorker(env));
    const status = await finalStatus(apis[1]!, jobId);
    assert.equal(status.body.status, 'completed', JSON.stringify(status.body));
    await assertExactlyOncePerRecord(apis[0]!, jobId, expected);
    // The victim's chunk came back through BullMQ's stalled check.
    const events = await client.xrange(`${PREFIX}:${bulkShardOf(apis[1]!)}:events`, '-', '+');
    assert.ok(
      events.some(([, f]) => f[0] === 'event' && f[1] === 'stalled'),
      'no chunk went through the stalled check',
    );
  } finally {
    thaw();
  }
});

test('an api SIGTERMed under load answers the calls in flight and exits 0; the other keeps serving', async () => {
  const [keep, drained] = [apis[0]!, apis[1]!];
  const onDrained = load([drained.url], 8, 5000);
  const onKept = load([keep.url], 4, 5000);
  await waitFor(() => onDrained.outcomes.filter((o) => o.status === 200).length >= 100, { timeoutMs: 20_000, what: '100 calls answered' });
  // New calls stop as a load balancer stops sending to a pod it is draining; those in flight go on.
  onDrained.halt();
  const inFlight = onDrained.inFlight();
  const exit = drained.stop('SIGTERM');
  await onDrained.stop();
  assert.equal(await exit, 0);
  await onKept.stop();
  apis.splice(1, 1);
  assert.ok(inFlight > 0, 'calls were in flight at the signal');
  assert.ok(
    onDrained.outcomes.every((o) => o.status === 200),
    `every call answered 200: ${byStatus(onDrained.outcomes)} ${onDrained.outcomes.map((o) => o.error ?? '').join(' ')}`,
  );
  assert.ok(
    onKept.outcomes.every((o) => o.status === 200),
    byStatus(onKept.outcomes),
  );
  apis.push(await startApi({ ...env, LOG_LEVEL: 'info' }));
});

test('a master SIGKILLed under load: calls fail fast, recover within 30 s; a bulk job through it ends completed exactly once or failed with a reason', async (t) => {
  assert.ok(cluster);
  const TIMEOUT_MS = 1000;
  const target = apis[0]!;
  const running = load(
    apis.map((a) => a.url),
    4,
    TIMEOUT_MS,
  );
  await waitFor(() => running.outcomes.filter((o) => o.status === 200).length >= 50, { timeoutMs: 20_000, what: 'calls answered before the kill' });
  const { jobId, expected } = await submitJob(target, 100 * CHUNK, 14);
  await waitFor(async () => (await jobDone(jobId)) > 0, { timeoutMs: 30_000, intervalMs: 2, what: 'the bulk job under way' });

  // The master of the online shard the first api sends to: its calls' queue goes down with it.
  const killedAt = Date.now();
  const before = running.outcomes.length;
  const { killed, promoted } = await cluster.killMaster({ key: `${PREFIX}:${predictShardOf(target)}:wait` });
  const jobMaster = await cluster.masterOf(bulkJobKey(PREFIX, jobId));
  t.diagnostic(
    `killed ${killed}; ${promoted} promoted after ${Date.now() - killedAt} ms; the bulk job's keys on ${jobMaster}, its chunks' queue on ${await cluster.masterOf(`${PREFIX}:${bulkShardOf(target)}:wait`)}`,
  );

  // Recovered: the last 40 calls all answered 200.
  const recovered = await waitFor(
    () => {
      const since = running.outcomes.slice(before);
      return since.length >= 40 && since.slice(-40).every((o) => o.status === 200) ? Date.now() : undefined;
    },
    { timeoutMs: 30_000, intervalMs: 50, what: 'online calls to succeed again' },
  );
  await running.stop();
  const during = running.outcomes.slice(before);
  t.diagnostic(`online calls recovered ${recovered - killedAt} ms after the kill; outcomes since: ${byStatus(during)}`);
  assert.ok(recovered - killedAt < 30_000);
  for (const o of running.outcomes) {
    // 503: Redis refused the enqueue; 504: no reply in time; 429: admission saw scoring stop.
    assert.ok(o.status === 200 || o.status === 503 || o.status === 504 || o.status === 429, `status ${o.status} ${o.error ?? ''}`);
    // Never a hang: every call is answered within its timeout and some slack for a busy machine.
    assert.ok(o.ms < TIMEOUT_MS + 2000, `a call took ${Math.round(o.ms)} ms`);
  }

  const status = await finalStatus(target, jobId, 90_000);
  t.diagnostic(`bulk job through the failover: ${status.body.status} ${status.body.error ?? ''}`);
  if (status.body.status === 'completed') await assertExactlyOncePerRecord(target, jobId, expected);
  else {
    assert.equal(status.body.status, 'failed');
    assert.ok(status.body.error, 'a failed job says why');
  }
});
