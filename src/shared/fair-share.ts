// Fair share of the bulk queue between jobs and owners, with BullMQ's own priorities: no
// scheduler of ours between the queue and the workers. Every chunk is queued with a priority
// made of its job's level (high, normal, low: a level is taken wholly before the next) and a tag
// within the level, in the manner of start-time fair queuing:
//
//   tag(chunk k) = start + k × stride,  start = the level's clock + 1 when the job opens
//
// The clock is the tag of the newest chunk a worker took, so a job that arrives behind a long one
// starts level with where that one is now, not behind all of its remaining chunks: the two then
// take turns, chunk by chunk. `stride` is the number of the owner's jobs waiting, this one
// included: an owner that runs three jobs at once spreads each over three times the tags, so
// owners take turns before jobs do. Jobs already queued keep their tags, so an owner's share
// only settles to one turn in N once its earlier jobs end; the tags of queued chunks are never
// rewritten, which would cost a command per chunk.
//
// BullMQ orders prioritized jobs by priority, lowest first, then first in, first out; a priority
// is at most 2^21 (bullmq's PRIORITY_LIMIT). Each level owns a third of that range. A clock that
// has run through most of its range goes back to 0 once the bulk queue holds nothing waiting.
import type { RedisClient } from './redis.ts';
import { bulkClockKey } from './keys.ts';

export const JOB_PRIORITIES = ['high', 'normal', 'low'] as const;
export type JobPriority = (typeof JOB_PRIORITIES)[number];

/** BullMQ's largest priority. */
const PRIORITY_LIMIT = 2 ** 21;
/** Tags per level. */
export const LEVEL_SPAN = Math.floor(PRIORITY_LIMIT / JOB_PRIORITIES.length);
/** Past this the clock is reset when nothing waits; the margin leaves room for the jobs queued meanwhile. */
export const CLOCK_RESET_AFTER = Math.floor(LEVEL_SPAN / 2);

/** Where a job's chunks go in the queue: its level, its first tag, and the step between its chunks' tags. */
export type Lane = { level: JobPriority; start: number; stride: number };

/** The tag of chunk `chunk` of a job in `lane`. */
export function chunkTag(lane: Lane, chunk: number): number {
  return lane.start + chunk * lane.stride;
}

/**
 * BullMQ priority of a tag in a level. A tag past the level's range stays at its end: those
 * chunks are still taken, first in, first out, after the rest of the level.
 */
export function chunkPriority(level: JobPriority, tag: number): number {
  const base = JOB_PRIORITIES.indexOf(level) * LEVEL_SPAN;
  return base + Math.min(LEVEL_SPAN, Math.max(1, Math.floor(tag)));
}

/** The level's clock now (0 before any chunk was taken). */
export async function readClock(redis: RedisClient, prefix: string, level: JobPriority): Promise<number> {
  return Number((await redis.get(bulkClockKey(prefix, level))) ?? 0);
}

/** A lane for a job opening now, behind `ownerJobs` other jobs of its owner still waiting. */
export async function openLane(redis: RedisClient, prefix: string, level: JobPriority, ownerJobs: number): Promise<Lane> {
  const clock = await readClock(redis, prefix, level);
  return { level, start: clock + 1, stride: Math.max(1, ownerJobs + 1) };
}

// Moves the clock forward only: chunks of one level are taken by many workers, not in order.
const ADVANCE = `
local now = tonumber(redis.call('GET', KEYS[1]) or '0')
if tonumber(ARGV[1]) > now then redis.call('SET', KEYS[1], ARGV[1]) end
return 1`;

/** Called by a worker as it takes a chunk: the level's clock is at least that chunk's tag. */
export async function advanceClock(redis: RedisClient, prefix: string, level: JobPriority, tag: number): Promise<void> {
  await redis.eval(ADVANCE, 1, bulkClockKey(prefix, level), tag);
}

/** Sets every clock back to 0; for when the bulk queue holds nothing waiting (see CLOCK_RESET_AFTER). */
export async function resetClocks(redis: RedisClient, prefix: string): Promise<void> {
  await Promise.all(JOB_PRIORITIES.map((level) => redis.set(bulkClockKey(prefix, level), 0)));
}
