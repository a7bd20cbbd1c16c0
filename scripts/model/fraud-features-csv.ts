// Writes the generated fraud data as the model's encoded feature columns (the float32 values the
// worker's encoder gives, one column per input position) with the label and the split, for
// scripts/model/train-xgboost.py. Python then trains on exactly the rows and encoding the
// project's GBDT (version 1) is trained on, without re-implementing the generator.
// Usage: node scripts/model/fraud-features-csv.ts <out.csv>
import { writeFileSync } from 'node:fs';
import { createFeatureEncoder } from '../../src/worker/features.ts';
import { fraudModelInput } from './feature-spec.ts';
import { REFERENCE_DATA, generateFraudRows } from './fraud-data.ts';

/** Column names of the encoded input: a field's name, or field_value for a one-hot column (field_unknown for the unknown code). */
export function fraudFeatureNames(input: ReturnType<typeof fraudModelInput>): string[] {
  const names: string[] = [];
  for (const f of input.features) {
    if (f.encoding === 'one_hot') names.push(...f.vocabulary.map((v) => `${f.name}_${v}`), `${f.name}_unknown`);
    else names.push(f.name);
  }
  if (names.length !== input.width) throw new Error(`feature names: ${names.length} for width ${input.width}`);
  return names;
}

const out = process.argv[2];
if (!out) throw new Error('usage: node scripts/model/fraud-features-csv.ts <out.csv>');
const rows = generateFraudRows(REFERENCE_DATA.seed, REFERENCE_DATA.rows);
const input = fraudModelInput(rows.slice(0, REFERENCE_DATA.trainRows));
const x = createFeatureEncoder(input).encode(rows);
const lines = [[...fraudFeatureNames(input), 'is_fraud', 'split'].join(',')];
for (let i = 0; i < rows.length; i++) {
  const cols = Array.from(x.subarray(i * input.width, (i + 1) * input.width), String);
  lines.push([...cols, rows[i]!.is_fraud, i < REFERENCE_DATA.trainRows ? 'train' : 'holdout'].join(','));
}
writeFileSync(out, lines.join('\n') + '\n');
