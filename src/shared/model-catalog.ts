// What a worker holds of the model repository, as JSON: written by the worker's
// ModelRepository.snapshot(), published to Redis with its heartbeat, read by the api to know what
// is servable and with which signature. One zod schema per shape; the types are inferred from them.
// The api reads snapshots its own workers wrote (worker-registry.ts), so they are typed, not parsed;
// the schemas serve the api's GET /models response and its OpenAPI document.
import { z } from 'zod';
import { ModelSignatureSchema } from './model-signature.ts';
import { RecordFieldSchema } from './record-fields.ts';
import { RoutingSchema } from './schemas/routing.ts';

/**
 * loaded: held and servable; loading / failed: as the worker's load left it; unavailable (api only):
 * on disk, held by no live worker.
 */
export const VERSION_STATES = ['loaded', 'loading', 'failed', 'unavailable'] as const;
export type VersionState = (typeof VERSION_STATES)[number];

/** What a version says about itself, whoever reports it (a worker's snapshot, the api's view). */
const VersionFields = {
  version: z.number().int(),
  drift: z
    .object({
      psi: z.number().nullable().describe('Population stability index of the last scores against the reference; null before any'),
      window: z.number().int().describe('Scores the PSI is taken over at most (SCORE_DRIFT_WINDOW)'),
      scores: z.number().int().describe('Scores in the window now'),
    })
    .optional()
    .describe("Score drift against the manifest's held-out score reference, as one live worker last reported it"),
  /** Why it failed, or why its last reload failed while the loaded session kept serving. */
  reason: z.string().optional().describe('Why it failed to load'),
  display_version: z.string().optional().describe('What replies name as model_version'),
  signature: ModelSignatureSchema.optional(),
  /** Graph outputs the service cannot read, never fetched. */
  ignored_outputs: z.array(z.object({ name: z.string(), reason: z.string() })).optional(),
  /** Set when the manifest gives a record encoding: records carry these fields, not the graph's inputs. */
  record_fields: z.array(z.string()).optional().describe("The manifest's record fields, taken instead of the graph's inputs"),
  /** The record encoding's fields with their value rules: the record schema follows from them. */
  fields: z.array(RecordFieldSchema).optional().describe("The record fields' value rules"),
  /** Set with a record encoding: the field a reply gives the version's probability under. */
  record_output: z.string().optional().describe('The field a record-encoded version answers its probability under'),
  /** Set when the manifest gives a decision policy: the labels a reply's `decision` takes. */
  decision: z.object({ output: z.string(), labels: z.array(z.string()) }).optional(),
  /** Per output, the name of each class. */
  class_labels: z.record(z.string(), z.array(z.string())).optional(),
};

export const VersionSnapshotSchema = z.object({
  ...VersionFields,
  state: z.enum(VERSION_STATES).exclude(['unavailable']),
  /** Work holding this version now. */
  leases: z.number().int().optional(),
});
export type VersionSnapshot = z.infer<typeof VersionSnapshotSchema>;

/** A version as the api shows it: merged over the live workers that report it. */
export const VersionViewSchema = z
  .object({
    ...VersionFields,
    state: z.enum(VERSION_STATES).describe('loaded: a live worker holds it; unavailable: on disk, held by none'),
    workers: z.number().int().describe('Live workers holding it'),
  })
  .meta({ id: 'ModelVersion' });
export type VersionView = z.infer<typeof VersionViewSchema>;

export const ModelViewSchema = z
  .object({
    name: z.string(),
    versions: z.array(VersionViewSchema),
    /** aliases.json as written (alias → version). */
    aliases: z.record(z.string(), z.number().int()),
    routing: RoutingSchema.describe('routing.json as written: the canary and shadow shares of calls naming no version'),
    /** Where a call naming no version goes now: `champion`'s serving version, else `latest`'s. */
    default_version: z.number().int().nullable().describe('Where a call naming no version goes now'),
    problems: z.array(z.string()),
  })
  .meta({ id: 'Model' });
export type ModelView = z.infer<typeof ModelViewSchema>;

export type ModelSnapshot = Omit<ModelView, 'versions' | 'routing'> & {
  versions: VersionSnapshot[];
  /** Absent from a worker of an earlier release: no routing. */
  routing?: ModelView['routing'];
  /** Alias → the version calls go to now (a moved alias keeps its old target until the new one loads); `latest` included. */
  serving: Record<string, number>;
  /** Every version directory on disk, selected by MODELS or not: a version known to exist. */
  on_disk?: number[];
};

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
