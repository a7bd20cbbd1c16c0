// Rendering the kustomize overlays of deploy/k8s and looking things up in what they render.
// kubectl renders offline (no cluster); objects are validated with the kubernetes-models
// packages, whose schemas are generated from Kubernetes' OpenAPI and the CRDs (KEDA, the
// Prometheus Operator).
import { execFileSync } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import { ROOT } from './deploy-files.ts';

export const K8S_DIR = 'deploy/k8s';

// The shapes these checks read; kubernetes-models validates the rest.
export type K8sObject = {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string> };
  spec?: any;
  data?: Record<string, string>;
};
export type Container = {
  name: string;
  image: string;
  command?: string[];
  args?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: KeyRef; configMapKeyRef?: KeyRef } }[];
  envFrom?: { configMapRef?: { name: string }; secretRef?: { name: string } }[];
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  startupProbe?: Probe;
  lifecycle?: { preStop?: { sleep?: { seconds: number } } };
  securityContext?: Record<string, any>;
};
export type KeyRef = { name: string; key: string };
export type Probe = { httpGet?: { path: string; port: string | number } };

export function overlays(): string[] {
  return readdirSync(`${ROOT}${K8S_DIR}/overlays`, { withFileTypes: true })
    .filter((d) => d.isDirectory())
    .map((d) => d.name)
    .sort();
}

export function renderOverlay(name: string): K8sObject[] {
  let yaml: string;
  try {
    yaml = execFileSync('kubectl', ['kustomize', `${ROOT}${K8S_DIR}/overlays/${name}`], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const { code, stderr } = err as { code?: string; stderr?: string };
    throw new Error(
      code === 'ENOENT' ? 'kubectl is needed to render deploy/k8s (it renders offline, no cluster)' : `kubectl kustomize ${name}: ${stderr}`,
      { cause: err },
    );
  }
  return parseAllDocuments(yaml).map((doc) => {
    if (doc.errors.length > 0) throw new Error(`${name}: ${doc.errors.join('; ')}`);
    return doc.toJS() as K8sObject;
  });
}

/** The kubernetes-models class for an object: core and built-in groups, else a CRD package by group. */
const CRD_PACKAGES: Record<string, string> = {
  'keda.sh': '@kubernetes-models/keda',
  'monitoring.coreos.com': '@kubernetes-models/prometheus-operator',
};

export async function validateObject(object: K8sObject): Promise<void> {
  const [group, version] = object.apiVersion.includes('/') ? object.apiVersion.split('/') : ['', object.apiVersion];
  const module =
    group!.includes('.') && !group!.endsWith('.k8s.io')
      ? `${CRD_PACKAGES[group!] ?? `(no schema package for ${group})`}/${group}/${version}/${object.kind}`
      : `kubernetes-models/${group ? `${group}/` : ''}${version}/${object.kind}`;
  const exports = (await import(module)) as Record<string, new (data: unknown) => { validate(): void }>;
  const Model = exports[object.kind];
  if (!Model) throw new Error(`${module} exports no ${object.kind}`);
  const { apiVersion: _a, kind: _k, ...data } = object;
  new Model(data).validate();
}

export function find(objects: K8sObject[], kind: string, name: string): K8sObject {
  const found = objects.find((o) => o.kind === kind && o.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name} in ${objects.map((o) => `${o.kind}/${o.metadata.name}`).join(', ')}`);
  return found;
}

/** Deployments and StatefulSets: the objects that hold a pod template. */
export function workloads(objects: K8sObject[]): K8sObject[] {
  return objects.filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet');
}

export function containersOf(workload: K8sObject): Container[] {
  return workload.spec.template.spec.containers as Container[];
}

const decodeSecret = (value: string) => Buffer.from(value, 'base64').toString('utf8');

/**
 * The environment a container gets: its ConfigMaps (envFrom), then its own env. Values from a
 * Secret the overlay does not render (production's, created from a secret store) read as
 * `missing(name, key)`.
 */
export function containerEnv(objects: K8sObject[], container: Container, missing: (ref: KeyRef) => string): Record<string, string> {
  const env: Record<string, string> = {};
  for (const from of container.envFrom ?? []) {
    if (from.configMapRef) Object.assign(env, find(objects, 'ConfigMap', from.configMapRef.name).data);
    if (from.secretRef) throw new Error(`${container.name}: envFrom a Secret hides which variables it sets; name them in env`);
  }
  for (const { name, value, valueFrom } of container.env ?? []) {
    if (value !== undefined) env[name] = value;
    else if (valueFrom?.configMapKeyRef) env[name] = find(objects, 'ConfigMap', valueFrom.configMapKeyRef.name).data![valueFrom.configMapKeyRef.key]!;
    else if (valueFrom?.secretKeyRef) {
      const ref = valueFrom.secretKeyRef;
      const secret = objects.find((o) => o.kind === 'Secret' && o.metadata.name === ref.name);
      env[name] = secret ? decodeSecret(secret.data![ref.key] ?? '') : missing(ref);
    }
  }
  return env;
}

export function portNumber(container: Container, port: string | number): number | undefined {
  return typeof port === 'number' ? port : container.ports?.find((p) => p.name === port)?.containerPort;
}

export const matches = (selector: Record<string, string>, labels: Record<string, string> = {}) =>
  Object.entries(selector).every(([k, v]) => labels[k] === v);

/** Metric names in a PromQL query: the names written as selectors, `name{...}`. */
export function metricNames(query: string): string[] {
  return [...query.matchAll(/([a-zA-Z_:][a-zA-Z0-9_:]*)\s*\{/g)].map((m) => m[1]!);
}
