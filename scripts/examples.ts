// `npm run examples`: the small input files of examples/ (README, CLI), generated from the
// data generator so they look like what the model was trained on. A test holds the committed
// files equal to this output.
import { mkdirSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { fraudRecordsToCsv, generateFraudRecords } from './model/fraud-data.ts';

const SEED = 7;
const COUNT = 20;

/** File name under examples/ → contents. */
export function exampleFiles(): Record<string, string> {
  const records = generateFraudRecords(SEED, COUNT);
  return {
    'record.json': JSON.stringify(records[0], null, 2) + '\n',
    'records.ndjson': records.map((r, i) => JSON.stringify({ id: `tx-${i + 1}`, ...r })).join('\n') + '\n',
    'records.csv': fraudRecordsToCsv(records),
  };
}

export const EXAMPLES_DIR = fileURLToPath(new URL('../examples/', import.meta.url));

if (import.meta.main) {
  mkdirSync(EXAMPLES_DIR, { recursive: true });
  for (const [name, text] of Object.entries(exampleFiles())) writeFileSync(EXAMPLES_DIR + name, text);
}
