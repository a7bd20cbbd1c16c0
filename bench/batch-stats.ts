// Records per session.run, read the way an operator would: the workers' scoring_batch_records
// histogram on their ops ports (Prometheus text), summed over workers, before and after a step.
// The baseline keeps the same two counters on its /stats route.

export type BatchCounters = { runs: number; records: number };

function metricValue(text: string, name: string): number {
  let total = 0;
  for (const line of text.split('\n')) {
    if (!line.startsWith(name)) continue;
    const rest = line.slice(name.length);
    // `name 12` or `name{labels} 12`; not a longer metric name that shares the prefix.
    if (rest[0] !== ' ' && rest[0] !== '{') continue;
    total += Number(rest.slice(rest.lastIndexOf(' ') + 1));
  }
  return total;
}

export async function readWorkerBatches(workerUrls: string[]): Promise<BatchCounters> {
  const counters = { runs: 0, records: 0 };
  for (const url of workerUrls) {
    const text = await (await fetch(`${url}/metrics`)).text();
    counters.runs += metricValue(text, 'scoring_batch_records_count');
    counters.records += metricValue(text, 'scoring_batch_records_sum');
  }
  return counters;
}

export async function readBaselineBatches(baselineUrl: string): Promise<BatchCounters> {
  return (await (await fetch(`${baselineUrl}/stats`)).json()) as BatchCounters;
}

/** Mean records per session.run between two readings; null when nothing ran (or metrics are off). */
export function averageBatch(before: BatchCounters, after: BatchCounters): number | null {
  const runs = after.runs - before.runs;
  return runs > 0 ? Math.round(((after.records - before.records) / runs) * 100) / 100 : null;
}
