// Champion and challenger: a model's routing.json beside aliases.json. A call that names no version
// goes to the canary's share of calls or else to the champion, sticky by a routing key; the
// shadow's share of calls is also scored by the shadow version after the caller has its answer.
// The share a key falls in is a hash of the key, so one key always gets the same version while
// the file stays the same.
import { createHash } from 'node:crypto';
export const ROUTING_FILE = 'routing.json';

/**
 * Where in [0, 100) a routing key falls for one split. Each split hashes with its own salt, so
 * the canary's calls are not also the shadow's first ones.
 */
export function routingShare(key: string, split: 'canary' | 'shadow'): number {
  const digest = createHash('md5').update(split).update('\0').update(key).digest();
  return (digest.readUInt32BE(0) % 10_000) / 100;
}

/** Whether a key falls in a split's share. */
export function inShare(key: string, split: 'canary' | 'shadow', percent: number): boolean {
  return routingShare(key, split) < percent;
}
