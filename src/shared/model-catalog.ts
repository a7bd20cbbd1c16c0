// What a worker holds of the model repository, as JSON: written by the worker's
// ModelRepository.snapshot(), published to Redis with its heartbeat, read by the api to know what
// is servable and with which signature.
import type { ModelSignature } from './model-signature.ts';

export type VersionState = 'loading' | 'loaded' | 'failed';

export interface VersionSnapshot {
  version: number;
  state: VersionState;
  /** Why it failed, or why its last reload failed while the loaded session kept serving. */
  reason?: string;
  /** What replies name as `model_version` (the manifest's version, else the number). */
  display_version?: string;
  signature?: ModelSignature;
  /** Graph outputs the service cannot read, never fetched. */
  ignored_outputs?: { name: string; reason: string }[];
  /** Set when the manifest gives a record encoding: records carry these fields, not the graph's inputs. */
  record_fields?: string[];
  /** Set when the manifest gives a decision policy: the labels a reply's `decision` takes. */
  decision?: { output: string; labels: string[] };
  /** Per output, the name of each class. */
  class_labels?: Record<string, string[]>;
  /** Work holding this version now. */
  leases?: number;
}

export interface ModelSnapshot {
  name: string;
  versions: VersionSnapshot[];
  /** aliases.json as written (alias → version). */
  aliases: Record<string, number>;
  /** Alias → the version calls go to now (a moved alias keeps its old target until the new one loads); `latest` included. */
  serving: Record<string, number>;
  /** Where a call naming no version goes now: `champion`'s serving version, else `latest`'s. */
  default_version: number | null;
  /** Every version directory on disk, selected by MODELS or not: a version known to exist. */
  on_disk?: number[];
  problems: string[];
}

export interface RepositorySnapshot {
  root: string;
  /** ISO time of the last completed scan; null before the first. */
  refreshed_at: string | null;
  models: ModelSnapshot[];
  /** Problems of the repository itself (unreadable root, MODELS naming an absent model). */
  problems: string[];
  /** Models on disk that MODELS does not select, with their version directories: they exist, this worker does not hold them. */
  other_models?: Record<string, number[]>;
  /** The queues the worker drains (WORKER_QUEUES); absent, both (a worker of an earlier release). */
  queues?: readonly WorkerQueue[];
}

/** What a worker drains: online calls, bulk chunks, or both. */
export type WorkerQueue = 'online' | 'bulk';

/** Online calls may be sent only for what a worker that drains the online queues holds. */
export function drainsOnline(snapshot: RepositorySnapshot): boolean {
  return snapshot.queues === undefined || snapshot.queues.includes('online');
}
