// The longest event-loop delay of each 100 ms window, as a histogram: scoring_event_loop_stall_seconds.
// The runtime instrumentation's nodejs_eventloop_delay_* gauges are reset at each scrape, so
// what they say depends on who scrapes and when; a histogram adds up, so a p99 over any window
// (a dashboard's, or the bench's phases) can be read from its buckets. A process that holds its
// loop for 300 ms shows as windows in the 0.25–0.5 s bucket, whatever else it does.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import type { Meter } from '@opentelemetry/api';

/** One sample per window: short enough to place a stall in time, long enough to cost nothing. */
export const STALL_WINDOW_MS = 100;
/** From a loop that keeps up (1 ms) to one held for seconds. */
export const STALL_BUCKETS_S = [0.001, 0.002, 0.005, 0.01, 0.02, 0.05, 0.1, 0.25, 0.5, 1, 2.5];

export type StallMonitor = { stop: () => void };

export function monitorEventLoopStalls(meter: Meter): StallMonitor {
  // 1 ms: the histogram's resolution; finer costs a timer wake-up more often for nothing we report.
  const delay = monitorEventLoopDelay({ resolution: 1 });
  delay.enable();
  const stalls = meter.createHistogram('scoring_event_loop_stall_seconds', {
    description: `Longest event-loop delay in each ${STALL_WINDOW_MS} ms window (monitorEventLoopDelay)`,
    unit: 's',
    advice: { explicitBucketBoundaries: STALL_BUCKETS_S },
  });
  const timer = setInterval(() => {
    // max is in ns; a window with no sample (the loop was held the whole time) reports on the next.
    if (delay.count > 0) stalls.record(delay.max / 1e9);
    delay.reset();
  }, STALL_WINDOW_MS);
  timer.unref();
  return {
    stop: () => {
      clearInterval(timer);
      delay.disable();
    },
  };
}
