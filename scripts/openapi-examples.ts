// Builds the examples of the OpenAPI document (src/api/openapi/examples.json): records from the
// fraud data generator, scored by the committed model as a worker scores them, so every example
// shows a probability the service really returns and the decision the manifest's thresholds give
// it. `npm run openapi:examples` rewrites the file; a test holds the committed file to this script.
import { writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { generateFraudRecords } from './model/fraud-data.ts';
import { loadModelVersion } from '../src/worker/model-version.ts';
import type { FraudRecord } from '../src/shared/schemas/record.ts';
import type { Decision } from '../src/shared/schemas/prediction.ts';

export const EXAMPLES_FILE = fileURLToPath(new URL('../src/api/openapi/examples.json', import.meta.url));
const MODEL_DIR = fileURLToPath(new URL('../models/fraud/1', import.meta.url));
/** Seed and count of the generated records the examples are picked from. */
const SEED = 2026;
const CANDIDATES = 2000;

export type ScoredExample = { record: FraudRecord; fraud_probability: number; decision: Decision };

export type OpenapiExamples = {
  model_version: string;
  thresholds: { approve: number; review: number };
  /** The first generated record of each decision, in the order approve, review, decline. */
  predictions: ScoredExample[];
  /** A small bulk job: the first records of the generator, with ids, and their results. */
  bulk: { records: (FraudRecord & { id: string })[]; results: { index: number; id: string; fraud_probability: number; decision: Decision }[] };
};

export async function buildOpenapiExamples(): Promise<OpenapiExamples> {
  const model = await loadModelVersion(MODEL_DIR, 'fraud', 1);
  try {
    const thresholds = model.manifest!.thresholds!;
    const records = generateFraudRecords(SEED, CANDIDATES);
    const probabilities = Array.from(await model.probabilities(records));
    const scored = records.map((record, i) => ({
      record,
      fraud_probability: probabilities[i]!,
      decision: model.decide(probabilities[i]!) as Decision,
    }));
    const predictions = (['approve', 'review', 'decline'] as const).map((decision) => {
      const found = scored.find((s) => s.decision === decision);
      if (!found) throw new Error(`no ${decision} among ${CANDIDATES} generated records of seed ${SEED}`);
      return found;
    });
    const bulk = predictions.map((p, index) => ({ ...p, id: `txn-${String(scored.indexOf(p)).padStart(6, '0')}`, index }));
    return {
      model_version: model.displayVersion,
      thresholds: { approve: thresholds.approve, review: thresholds.review },
      predictions,
      bulk: {
        records: bulk.map((b) => ({ id: b.id, ...b.record })),
        results: bulk.map((b) => ({ index: b.index, id: b.id, fraud_probability: b.fraud_probability, decision: b.decision })),
      },
    };
  } finally {
    await model.retire();
  }
}

export function examplesText(examples: OpenapiExamples): string {
  return `${JSON.stringify(examples, null, 2)}\n`;
}

if (import.meta.main) {
  await writeFile(EXAMPLES_FILE, examplesText(await buildOpenapiExamples()));
  console.log(`wrote ${EXAMPLES_FILE}`);
}
