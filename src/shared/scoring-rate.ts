// How fast the workers score, measured from the records-scored counter they advance
// (recordsScoredKey), and how long the records already waiting would take at that rate.
// Pure functions over samples, so admission and the drain gauge can be tested without clocks.

/** One reading of the records-scored counter, and the records that were waiting at that moment. */
export type RateSample = { at: number; scored: number; waiting: number };

/**
 * Records per second scored during the intervals of the window that began with work waiting.
 * An idle interval says nothing about capacity (nothing to score), so it is left out; a busy
 * interval in which nothing was scored (a frozen or dead worker) counts as zero. undefined when
 * the window holds less than minBusyMs of busy time: the rate is unknown, not zero.
 */
export function busyScoringRate(samples: readonly RateSample[], now: number, windowMs: number, minBusyMs = 0): number | undefined {
  let busyMs = 0;
  let scored = 0;
  for (let i = 1; i < samples.length; i++) {
    const from = samples[i - 1]!;
    const to = samples[i]!;
    if (to.at <= now - windowMs || from.waiting <= 0 || to.at <= from.at) continue;
    busyMs += to.at - from.at;
    // A counter that went backwards was reset (Redis flushed): that interval scored nothing known.
    scored += Math.max(0, to.scored - from.scored);
  }
  return busyMs === 0 || busyMs < minBusyMs ? undefined : (scored * 1000) / busyMs;
}

/**
 * Milliseconds until `waiting` records are scored at `ratePerSecond`: 0 when nothing waits or
 * the rate is unknown (admit and measure), Infinity when work waits and nothing is being scored.
 */
export function predictedWaitMs(waiting: number, ratePerSecond: number | undefined): number {
  if (waiting <= 0 || ratePerSecond === undefined) return 0;
  if (ratePerSecond <= 0) return Infinity;
  return (waiting * 1000) / ratePerSecond;
}

/** Drops samples older than the window, keeping the one that opens the window's first interval. */
export function trimSamples(samples: RateSample[], now: number, windowMs: number): void {
  while (samples.length > 1 && samples[1]!.at <= now - windowMs) samples.shift();
}

/** Records per second over the whole window, idle time included: what was scored, not what could be. undefined before two samples. */
export function windowScoringRate(samples: readonly RateSample[], now: number, windowMs: number): number | undefined {
  // The window opens at the last sample taken before it, or at the first sample there is.
  let first = samples[0];
  for (const sample of samples) if (sample.at <= now - windowMs) first = sample;
  const last = samples.at(-1);
  if (!first || !last || last.at <= first.at) return undefined;
  return (Math.max(0, last.scored - first.scored) * 1000) / (last.at - first.at);
}

/**
 * Seconds the backlog would take to drain at the rate measured while busy, else at the last
 * such rate known. With none known (no worker has scored yet, or none scores now) it assumes one
 * record a second, so a backlog nobody drains reads as large and growing rather than as zero.
 */
export function drainSeconds(backlog: number, busyRate: number | undefined, lastKnownRate: number | undefined): number {
  if (backlog <= 0) return 0;
  const rate = busyRate !== undefined && busyRate > 0 ? busyRate : lastKnownRate !== undefined && lastKnownRate > 0 ? lastKnownRate : 1;
  return backlog / rate;
}
