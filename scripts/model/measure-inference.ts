// Measures the committed model on this machine: rows/s per batch size with one session on one
// intra-op thread, and how long a run keeps the event loop from turning (what a worker's Redis
// heartbeats and lock renewals would wait). Prints medians. Usage: node scripts/model/measure-inference.ts
import { parseArgs } from 'node:util';
import { basename, dirname } from 'node:path';
import { loadModelVersion } from '../../src/worker/model-version.ts';
import { generateFraudRecords } from './fraud-data.ts';
import { median } from '../../bench/load.ts';

const { values } = parseArgs({
  options: {
    model: { type: 'string', default: 'models/fraud/1' },
    sizes: { type: 'string', default: '1,64,1024,16384' },
    'seconds-per-size': { type: 'string', default: '1.5' },
  },
});
const sizes = values.sizes.split(',').map(Number);
const budgetMs = Number(values['seconds-per-size']) * 1000;
const MIN_RUNS = 7;
const WARMUP_RUNS = 3;

/**
 * Runs `work` once and reports its latency and the event-loop block: the time until a setImmediate
 * queued just before the call gets to run. If the runtime computes off the main thread the
 * immediate fires at once; if it computes inline, it waits for the whole run.
 */
async function timeOnce(work: () => Promise<unknown>): Promise<{ latencyMs: number; blockMs: number }> {
  const start = performance.now();
  let immediateAt = Number.NaN;
  setImmediate(() => {
    immediateAt = performance.now();
  });
  await work();
  const end = performance.now();
  if (Number.isNaN(immediateAt)) {
    await new Promise<void>((resolve) => setImmediate(resolve));
    immediateAt = performance.now();
  }
  return { latencyMs: end - start, blockMs: Math.min(immediateAt, end) - start };
}

const model = await loadModelVersion(values.model, basename(dirname(values.model)), Number(basename(values.model)), { intraOpNumThreads: 1 });
const encoder = model.encoder!;
console.log(`model ${model.displayVersion}, intraOpNumThreads 1, ${budgetMs / 1000} s per size; medians:`);
console.log('batch   runs   infer ms   rows/s (infer)   loop block ms   rows/s (encode+infer)');
try {
  for (const size of sizes) {
    const records = generateFraudRecords(1000 + size, size);
    const features = encoder.encode(records);
    for (let i = 0; i < WARMUP_RUNS; i++) await model.scoreEncoded(features, size);

    const latencies: number[] = [];
    const blocks: number[] = [];
    const began = performance.now();
    while (latencies.length < MIN_RUNS || performance.now() - began < budgetMs) {
      const { latencyMs, blockMs } = await timeOnce(() => model.scoreEncoded(features, size));
      latencies.push(latencyMs);
      blocks.push(blockMs);
    }
    const withEncoding: number[] = [];
    const beganEncoding = performance.now();
    while (withEncoding.length < MIN_RUNS || performance.now() - beganEncoding < budgetMs / 3) {
      withEncoding.push((await timeOnce(() => model.probabilities(records))).latencyMs);
    }

    const inferMs = median(latencies);
    console.log(
      [
        String(size).padStart(5),
        String(latencies.length).padStart(6),
        inferMs.toFixed(3).padStart(10),
        Math.round((size / inferMs) * 1000)
          .toLocaleString('en-US')
          .padStart(16),
        median(blocks).toFixed(3).padStart(15),
        Math.round((size / median(withEncoding)) * 1000)
          .toLocaleString('en-US')
          .padStart(23),
      ].join(' '),
    );
  }
} finally {
  await model.retire();
}
