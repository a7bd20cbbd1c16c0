// The Kubernetes manifests (deploy/k8s), rendered by `kubectl kustomize` for every overlay and
// checked for what can be checked without a cluster: each object against its schema, every
// variable against the config, probes and scrape paths against the running processes, the
// KEDA query against the metrics the api exports, and image names against compose.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { loadConfig, ENV_VARIABLES } from '../../src/shared/config.ts';
import { QUEUES, predictQueueName } from '../../src/shared/queues.ts';
import { ROOT, dockerfile, isServiceVariable, readCompose, readRepoFile } from '../helpers/deploy-files.ts';
import {
  K8S_DIR,
  containerEnv,
  containersOf,
  find,
  matches,
  metricNames,
  overlays,
  portNumber,
  renderOverlay,
  validateObject,
  workloads,
  type Container,
  type K8sObject,
  type KeyRef,
} from '../helpers/k8s-manifests.ts';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';

const OVERLAYS = overlays();
const rendered = new Map(OVERLAYS.map((o) => [o, renderOverlay(o)]));
const IMAGES = { api: 'scoring-api', worker: 'scoring-worker' } as const;
const placeholder = (ref: KeyRef) => (ref.key === 'REDIS_URL' ? 'redis://redis.example.internal:6379' : '');

function container(objects: K8sObject[], deployment: string): Container {
  const [only, ...rest] = containersOf(find(objects, 'Deployment', deployment));
  assert.ok(only && rest.length === 0, `${deployment} runs one container`);
  return only;
}

/** The worker Deployments: one that drains both kinds of queue, or a pool per kind (production). */
function workerNames(objects: K8sObject[]): string[] {
  return objects
    .filter((o) => o.kind === 'Deployment' && o.spec.template.metadata.labels['app.kubernetes.io/component'] === 'worker')
    .map((o) => o.metadata.name as string);
}

/** What a worker Deployment drains: WORKER_QUEUES as the config reads it. */
function drains(objects: K8sObject[], name: string): string[] {
  return loadConfig(containerEnv(objects, container(objects, name), placeholder)).worker.queues;
}

/** The image's name without registry and tag: registry.example.com/scoring/scoring-api:0.1.0 → scoring-api. */
const imageName = (image: string) => image.split('/').at(-1)!.split(/[:@]/)[0]!;

test('there is a production and a development overlay', () => {
  assert.ok(OVERLAYS.includes('production') && OVERLAYS.includes('development'), OVERLAYS.join(', '));
});

for (const [overlay, objects] of rendered) {
  describe(`overlay ${overlay}`, () => {
    test('every object is valid against its Kubernetes, KEDA or Prometheus Operator schema', async () => {
      assert.ok(objects.length > 0);
      for (const object of objects) {
        await assert.doesNotReject(validateObject(object), `${object.kind}/${object.metadata.name}`);
      }
    });

    test('every variable a container gets is one the config reads, and the config accepts their values', () => {
      for (const workload of workloads(objects)) {
        for (const c of containersOf(workload)) {
          if (!c.image.includes('scoring-')) continue;
          const env = containerEnv(objects, c, placeholder);
          for (const name of Object.keys(env)) {
            assert.ok(isServiceVariable(name), `${workload.metadata.name}: ${name} is read by src/shared/config.ts`);
          }
          assert.doesNotThrow(() => loadConfig(env), `${workload.metadata.name}'s environment passes the config`);
        }
      }
      for (const configMap of objects.filter((o) => o.kind === 'ConfigMap')) {
        for (const name of Object.keys(configMap.data ?? {})) {
          assert.ok(ENV_VARIABLES.includes(name), `ConfigMap ${configMap.metadata.name}: ${name}`);
        }
      }
    });

    test('API_KEYS and the Redis URL come from a Secret, which the overlay renders or says how to create', () => {
      const refs = workloads(objects)
        .flatMap((w) => containersOf(w))
        .flatMap((c) => (c.env ?? []).filter((e) => e.valueFrom?.secretKeyRef).map((e) => [e.name, e.valueFrom!.secretKeyRef!] as const));
      const secretVariables = new Set(refs.map(([name]) => name));
      assert.ok(secretVariables.has('API_KEYS') && secretVariables.has('REDIS_URL'), [...secretVariables].join(', '));
      for (const c of workloads(objects).flatMap((w) => containersOf(w))) {
        for (const e of c.env ?? []) {
          assert.ok(!['API_KEYS', 'REDIS_URL'].includes(e.name) || e.valueFrom?.secretKeyRef, `${e.name} is not written in the clear`);
        }
      }
      const kustomization = readRepoFile(`${K8S_DIR}/overlays/${overlay}/kustomization.yaml`);
      for (const [, ref] of refs) {
        const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name);
        if (secret) assert.ok(ref.key in (secret.data ?? {}), `Secret ${ref.name} has ${ref.key}`);
        else {
          assert.match(
            kustomization,
            new RegExp(`create secret generic ${ref.name}[\\s\\S]*--from-literal=${ref.key}=`),
            `the overlay says how to create ${ref.name}.${ref.key}`,
          );
        }
      }
    });

    test('api: /health for liveness, /ready for readiness, on the HTTP port; a Service for HTTP and gRPC; a PDB and an HPA on CPU', () => {
      const api = container(objects, 'scoring-api');
      const env = containerEnv(objects, api, placeholder);
      assert.equal(portNumber(api, 'http'), Number(env.PORT ?? 8080), 'the http port is the one PORT makes the api listen on');
      assert.equal(api.livenessProbe?.httpGet?.path, '/health');
      assert.equal(api.readinessProbe?.httpGet?.path, '/ready');
      for (const probe of [api.livenessProbe, api.readinessProbe, api.startupProbe]) {
        if (probe) assert.equal(portNumber(api, probe.httpGet!.port), portNumber(api, 'http'));
      }

      const service = find(objects, 'Service', 'scoring-api');
      const deployment = find(objects, 'Deployment', 'scoring-api');
      assert.ok(matches(service.spec.selector, deployment.spec.template.metadata.labels));
      const servicePorts = service.spec.ports as { name: string; port: number; targetPort: string }[];
      assert.deepEqual(servicePorts.map((p) => p.name).sort(), ['grpc', 'http']);
      for (const p of servicePorts) assert.ok(portNumber(api, p.targetPort), `Service port ${p.name} targets a container port`);
      // The contract's gRPC port, GRPC_PORT, default 8081.
      if (ENV_VARIABLES.includes('GRPC_PORT')) assert.equal(portNumber(api, 'grpc'), Number(env.GRPC_PORT ?? 8081));

      const pdb = find(objects, 'PodDisruptionBudget', 'scoring-api');
      assert.ok(matches(pdb.spec.selector.matchLabels, deployment.spec.template.metadata.labels));
      const hpa = find(objects, 'HorizontalPodAutoscaler', 'scoring-api');
      assert.equal(hpa.spec.scaleTargetRef.name, 'scoring-api');
      assert.ok(hpa.spec.metrics.some((m: any) => m.type === 'Resource' && m.resource.name === 'cpu'));
      assert.ok(api.resources?.requests?.cpu, "a CPU request, which the HPA's utilization is a share of");
    });

    test('workers: /health for liveness, /ready for readiness, on the ops port; one core per onnxruntime thread', () => {
      for (const name of workerNames(objects)) checkWorker(container(objects, name));
    });

    function checkWorker(worker: Container) {
      const env = containerEnv(objects, worker, placeholder);
      assert.equal(portNumber(worker, 'ops'), Number(env.WORKER_PORT ?? 9100));
      assert.equal(worker.livenessProbe?.httpGet?.path, '/health');
      assert.equal(worker.readinessProbe?.httpGet?.path, '/ready');
      for (const probe of [worker.livenessProbe, worker.readinessProbe, worker.startupProbe]) {
        if (probe) assert.equal(portNumber(worker, probe.httpGet!.port), portNumber(worker, 'ops'));
      }
      assert.equal(worker.resources?.requests?.cpu, String(Number(env.INTRA_OP_THREADS ?? 1)), 'one core per onnxruntime thread');
    }

    test('each pod may drain for longer than SHUTDOWN_TIMEOUT_MS after its preStop', () => {
      for (const name of ['scoring-api', ...workerNames(objects)]) {
        const deployment = find(objects, 'Deployment', name);
        const c = container(objects, name);
        const config = loadConfig(containerEnv(objects, c, placeholder));
        const drainMs = name === 'scoring-api' ? config.api.shutdownTimeoutMs : config.worker.shutdownTimeoutMs;
        const preStopMs = (c.lifecycle?.preStop?.sleep?.seconds ?? 0) * 1000;
        const graceMs = deployment.spec.template.spec.terminationGracePeriodSeconds * 1000;
        assert.ok(graceMs > preStopMs + drainMs, `${name}: grace ${graceMs} ms > preStop ${preStopMs} + drain ${drainMs}`);
      }
    });

    test('every pod runs as non-root on a read-only root filesystem, with requests and memory limits', () => {
      for (const workload of workloads(objects)) {
        const pod = workload.spec.template.spec;
        assert.equal(pod.securityContext?.runAsNonRoot, true, workload.metadata.name);
        for (const c of containersOf(workload)) {
          const where = `${workload.metadata.name}/${c.name}`;
          assert.equal(c.securityContext?.readOnlyRootFilesystem, true, where);
          assert.equal(c.securityContext?.allowPrivilegeEscalation, false, where);
          assert.deepEqual(c.securityContext?.capabilities?.drop, ['ALL'], where);
          assert.ok(c.resources?.requests?.cpu && c.resources.requests.memory && c.resources.limits?.memory, `${where} resources`);
          for (const mount of (c as { volumeMounts?: { name: string }[] }).volumeMounts ?? []) {
            const declared = [...(pod.volumes ?? []), ...(workload.spec.volumeClaimTemplates ?? []).map((v: K8sObject) => v.metadata)];
            assert.ok(
              declared.some((v: { name: string }) => v.name === mount.name),
              `${where} mounts ${mount.name}`,
            );
          }
        }
      }
    });

    test('the images are the ones docker-compose.yml builds from the Dockerfiles, started by their CMD', () => {
      const compose = readCompose();
      const deployments = { api: ['scoring-api'], worker: workerNames(objects) };
      const services = { api: ['api'], worker: ['worker-online', 'worker-bulk'] };
      for (const [kind, image] of Object.entries(IMAGES)) {
        for (const name of deployments[kind as keyof typeof IMAGES]) {
          const c = container(objects, name);
          assert.equal(imageName(c.image), image);
          assert.equal(c.command, undefined, "the Dockerfile's CMD (what npm run starts) runs");
          assert.equal(c.args, undefined);
        }
        const c = container(objects, deployments[kind as keyof typeof IMAGES][0]!);
        for (const serviceName of services[kind as keyof typeof IMAGES]) {
          assert.equal(compose.services[serviceName]?.image, image, `compose's ${serviceName} is tagged ${image}`);
        }
        const service = compose.services[services[kind as keyof typeof IMAGES][0]!];
        const file = service!.build!.dockerfile;
        assert.ok(existsSync(ROOT + file));
        const exposed = dockerfile(file).all('EXPOSE').map(Number);
        const port = kind === 'api' ? 'http' : 'ops';
        assert.ok(exposed.includes(portNumber(c, port)!), `${file} exposes the ${port} port`);
      }
    });

    test('every PodDisruptionBudget and Service selects pods that exist', () => {
      for (const o of objects.filter((x) => x.kind === 'PodDisruptionBudget' || x.kind === 'Service')) {
        const selector = o.kind === 'Service' ? o.spec.selector : o.spec.selector.matchLabels;
        assert.ok(
          workloads(objects).some((w) => matches(selector, w.spec.template.metadata.labels)),
          `${o.kind}/${o.metadata.name}`,
        );
      }
    });

    test('what autoscalers scale exists and carries no replica count of its own', () => {
      const targets = [
        ...objects.filter((o) => o.kind === 'HorizontalPodAutoscaler').map((o) => o.spec.scaleTargetRef.name as string),
        ...objects.filter((o) => o.kind === 'ScaledObject').map((o) => o.spec.scaleTargetRef.name as string),
      ];
      for (const name of workerNames(objects)) assert.ok(targets.includes(name), `${name} is autoscaled`);
      for (const name of targets) {
        assert.equal(find(objects, 'Deployment', name).spec.replicas, undefined, `${name}: an apply must not reset the autoscaler's count`);
      }
    });

    test('KEDA scales the workers with min/max replicas and a scale-down stabilization window, each pool on its own signal', () => {
      for (const scaled of objects.filter((o) => o.kind === 'ScaledObject')) {
        const target = scaled.spec.scaleTargetRef.name as string;
        assert.ok(workerNames(objects).includes(target), `${scaled.metadata.name} scales a worker Deployment`);
        const queues = drains(objects, target);
        if (queues.includes('online')) assert.ok(scaled.spec.minReplicaCount >= 1, 'online calls need a worker at all times');
        assert.ok(scaled.spec.maxReplicaCount > scaled.spec.minReplicaCount);
        assert.ok(scaled.spec.advanced.horizontalPodAutoscalerConfig.behavior.scaleDown.stabilizationWindowSeconds > 0);
        checkTriggers(scaled, target, queues);
      }
    });

    function checkTriggers(scaled: K8sObject, target: string, queues: string[]) {
      const worker = container(objects, target);
      const env = containerEnv(objects, worker, placeholder);
      const prefix = env.QUEUE_PREFIX ?? 'scoring';
      for (const trigger of scaled.spec.triggers as {
        type: string;
        metadata: Record<string, string>;
        metricType?: string;
        authenticationRef?: { name: string };
      }[]) {
        if (trigger.type === 'prometheus') {
          assert.ok(Number(trigger.metadata.threshold) > 0 && Number(trigger.metadata.activationThreshold) >= 0);
          const metrics = metricNames(trigger.metadata.query!);
          // A pool that does both reads the whole backlog; the online pool its calls; the bulk pool its chunks.
          const expected =
            queues.length === 2 ? 'scoring_backlog_drain_seconds' : queues[0] === 'online' ? 'scoring_online_drain_seconds' : 'scoring_queue_jobs';
          assert.deepEqual(metrics, [expected], `${scaled.metadata.name} (${queues.join(',')})`);
          // A drain already divides by the running workers' rate; AverageValue would divide again.
          // A count of chunks is divided by the replicas: AverageValue.
          assert.equal(trigger.metricType, expected === 'scoring_queue_jobs' ? 'AverageValue' : 'Value');
          if (expected === 'scoring_queue_jobs') assert.match(trigger.metadata.query!, new RegExp(`queue="${QUEUES.bulk.name}"`));
          const namespaces = [...trigger.metadata.query!.matchAll(/namespace="([^"]+)"/g)].map((m) => m[1]);
          for (const ns of namespaces) assert.equal(ns, scaled.metadata.namespace, "the query reads this overlay's namespace");
          const monitor = objects.find(
            (o) => o.kind === 'ServiceMonitor' && matches(o.spec.selector.matchLabels, find(objects, 'Service', 'scoring-api').metadata.labels),
          );
          assert.ok(monitor, 'Prometheus scrapes the api, which exports the gauges');
        } else if (trigger.type === 'redis') {
          // Online: the queues of the model versions the repository ships (fraud/1, species/1), every shard.
          const online = Number(env.ONLINE_QUEUE_SHARDS ?? 1);
          const onlineQueues = ['fraud', 'species'].flatMap((model) =>
            Array.from({ length: online }, (_, shard) => predictQueueName(model, 1, shard, online)),
          );
          const waitLists = onlineQueues.map((name) => `${prefix}:${name}:wait`);
          // Bulk chunks are prioritized (a sorted set), which KEDA's list scaler cannot read.
          assert.ok(
            waitLists.includes(trigger.metadata.listName!),
            `${trigger.metadata.listName} is the wait list of an online queue (${waitLists.join(', ')})`,
          );
          const auth = find(objects, 'TriggerAuthentication', trigger.authenticationRef!.name);
          for (const ref of auth.spec.secretTargetRef as { name: string; key: string }[]) {
            assert.ok(ref.key in (find(objects, 'Secret', ref.name).data ?? {}), `Secret ${ref.name} has ${ref.key}`);
          }
        } else {
          assert.fail(`unexpected trigger ${trigger.type}`);
        }
      }
    }

    test('Prometheus Operator monitors select a Service or pods that have the port they scrape', () => {
      for (const monitor of objects.filter((o) => o.kind === 'ServiceMonitor')) {
        const service = objects.find((o) => o.kind === 'Service' && matches(monitor.spec.selector.matchLabels, o.metadata.labels));
        assert.ok(service, `ServiceMonitor ${monitor.metadata.name} selects a Service`);
        for (const endpoint of monitor.spec.endpoints) assert.ok(service.spec.ports.some((p: { name: string }) => p.name === endpoint.port));
      }
      for (const monitor of objects.filter((o) => o.kind === 'PodMonitor')) {
        const workload = workloads(objects).find((w) => matches(monitor.spec.selector.matchLabels, w.spec.template.metadata.labels));
        assert.ok(workload, `PodMonitor ${monitor.metadata.name} selects pods`);
        for (const endpoint of monitor.spec.podMetricsEndpoints) {
          assert.ok(
            containersOf(workload).some((c) => portNumber(c, endpoint.port)),
            `a container has port ${endpoint.port}`,
          );
        }
      }
    });
  });
}

test('production runs an online pool and a bulk pool, each with its own scaler, selecting only its own pods', () => {
  const objects = rendered.get('production')!;
  const pools = workerNames(objects).sort();
  assert.deepEqual(pools, ['scoring-worker-bulk', 'scoring-worker-online']);
  assert.deepEqual(drains(objects, 'scoring-worker-online'), ['online']);
  assert.deepEqual(drains(objects, 'scoring-worker-bulk'), ['bulk']);
  for (const name of pools) {
    const scalers = objects.filter((o) => o.kind === 'ScaledObject' && o.spec.scaleTargetRef.name === name);
    assert.equal(scalers.length, 1, `${name} has one ScaledObject`);
    const other = pools.find((p) => p !== name)!;
    const labelsOfOther = find(objects, 'Deployment', other).spec.template.metadata.labels;
    assert.ok(!matches(find(objects, 'Deployment', name).spec.selector.matchLabels, labelsOfOther), `${name} does not select ${other}'s pods`);
    assert.ok(!matches(find(objects, 'PodDisruptionBudget', name).spec.selector.matchLabels, labelsOfOther), `${name}'s PDB`);
  }
});

test('development runs Redis with noeviction and AOF fsync every second', () => {
  const redis = containersOf(find(rendered.get('development')!, 'StatefulSet', 'scoring-redis'))[0]!;
  const args = (redis.args ?? []).join(' ');
  assert.match(args, /--maxmemory-policy noeviction/);
  assert.match(args, /--appendonly yes/);
  assert.match(args, /--appendfsync everysec/);
  assert.equal(
    rendered.get('production')!.some((o) => o.kind === 'StatefulSet'),
    false,
    'production uses a managed Redis/Valkey',
  );
});

// The paths the probes and monitors name, asked of a real api and worker started with the
// production overlay's settings (ports aside: each process gets a free one).
describe('probe and scrape paths answer on the running processes', () => {
  const objects = rendered.get('production')!;
  let redis: TestRedis;
  let api: ServiceProcess;
  let worker: ServiceProcess;

  before(async () => {
    redis = await startTestRedis();
    const envOf = (name: string) => ({ ...containerEnv(objects, container(objects, name), placeholder), REDIS_URL: redis.url, LOG_LEVEL: 'warn' });
    api = await startApi(envOf('scoring-api'));
    // The online pool: the api's registry counts only workers that drain online calls.
    worker = await startWorker(envOf('scoring-worker-online'));
  });
  after(async () => {
    await Promise.all([api?.stop(), worker?.stop()]);
    await redis?.close();
  });

  const pathsOf = (c: Container, monitors: string[]) => [
    ...[c.livenessProbe, c.readinessProbe, c.startupProbe].flatMap((p) => (p?.httpGet ? [p.httpGet.path] : [])),
    ...monitors,
  ];

  test('api', async () => {
    const monitors = objects.filter((o) => o.kind === 'ServiceMonitor').flatMap((m) => m.spec.endpoints.map((e: { path: string }) => e.path));
    for (const path of pathsOf(container(objects, 'scoring-api'), monitors)) {
      assert.equal((await fetch(api.url + path)).status, 200, path);
    }
  });

  test('worker', async () => {
    const monitors = objects.filter((o) => o.kind === 'PodMonitor').flatMap((m) => m.spec.podMetricsEndpoints.map((e: { path: string }) => e.path));
    assert.ok(monitors.includes('/metrics'));
    for (const path of pathsOf(container(objects, 'scoring-worker-online'), monitors)) {
      assert.equal((await fetch(worker.url + path)).status, 200, path);
    }
  });

  test('the api exports every metric the KEDA query names', async () => {
    const query = objects
      .filter((o) => o.kind === 'ScaledObject')
      .flatMap((o) => o.spec.triggers as { metadata: { query?: string } }[])
      .flatMap((t) => (t.metadata.query ? metricNames(t.metadata.query) : []));
    assert.ok(query.length > 0);
    const exported = await (await fetch(`${api.url}/metrics`)).text();
    for (const name of query) assert.match(exported, new RegExp(`^${name}[{ ]`, 'm'), `${name} on the api's /metrics`);
  });
});
