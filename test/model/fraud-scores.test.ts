// Fraud is a repository model like any other (issue 23): scored through the one loader and the one
// reply path, its scores on 10,000 records are bit for bit the ones the former fraud-only path
// (worker/model.ts + decide.ts, commit a10b1fd) gave, and its manifest's field rules accept and
// refuse what the contract's PredictRequest does.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';
import { ChunkBuilder, decodeChunk } from '../../src/shared/bulk-chunk.ts';
import { recordSchemaFromFields } from '../../src/shared/record-fields.ts';
import { FraudRecordSchema } from '../../src/shared/schemas/record.ts';
import { ManifestSchema, recordOrder } from '../../src/worker/manifest.ts';
import { loadModelVersion, type ModelVersion } from '../../src/worker/model-version.ts';

const MODEL_DIR = new URL('../../models/fraud/1/', import.meta.url).pathname;
const RECORDS = generateFraudRecords(23, 10_000);

// Digests of what the former path gave for RECORDS (loadModel(...).score(), decide() with the
// manifest's thresholds), taken before it was removed.
const BEFORE = {
  /** sha256 of the probabilities' float32 bytes. */
  probabilities: '2283afb938f53bbdfb4283f3f26c5e5953812d5fdc5365d82a3165bb46c35a3e',
  /** sha256 of the decisions joined by commas. */
  decisions: '183ecf228e8b33d1d4584f236a267b38630b395450896ddb2a3d591933fcbf99',
  /** sha256 of the probabilities as JSON numbers, as a reply carries them. */
  json: 'b6e3f692f65226e92767046ab802ca8e389df8c0c49f8c516cd1f68a96a95760',
};

const sha256 = (data: string | Uint8Array) => createHash('sha256').update(data).digest('hex');
const bytes = (a: Float32Array) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);

describe('fraud through the generic model path', () => {
  let model: ModelVersion;
  before(async () => {
    model = await loadModelVersion(MODEL_DIR, 'fraud', 1);
  });
  after(() => model.retire());

  test('10,000 records score and decide exactly as before, per record by name', async () => {
    const outputs = await model.run(RECORDS);
    assert.deepEqual(Object.keys(outputs[0]!), ['fraud_probability', 'decision']);
    const probabilities = Float32Array.from(outputs, (o) => o.fraud_probability as number);
    assert.equal(sha256(bytes(probabilities)), BEFORE.probabilities);
    assert.equal(sha256(outputs.map((o) => o.decision).join(',')), BEFORE.decisions);
    assert.equal(sha256(JSON.stringify(outputs.map((o) => o.fraud_probability))), BEFORE.json);
  });

  test('the columnar (bulk) path gives the same probabilities and decisions', async () => {
    const builder = new ChunkBuilder(RECORDS.length);
    for (const r of RECORDS) builder.push(r);
    const columns = decodeChunk(builder.encode());
    const probabilities = await model.scoreEncoded(model.encoder!.encodeColumns(columns, 0, columns.length), columns.length);
    assert.equal(sha256(bytes(probabilities)), BEFORE.probabilities);
    assert.equal(sha256(Array.from(probabilities, (p) => model.decide(p)).join(',')), BEFORE.decisions);
  });

  test("the manifest's record fields accept and refuse what PredictRequest does", () => {
    const manifest = ManifestSchema.parse(JSON.parse(readFileSync(`${MODEL_DIR}manifest.json`, 'utf8')));
    const fromManifest = recordSchemaFromFields(recordOrder(manifest.input!));
    assert.deepEqual(Object.keys(fromManifest.shape), Object.keys(FraudRecordSchema.shape), 'the fields, in the request order');
    const good = RECORDS[0]!;
    const cases: unknown[] = [
      good,
      { ...good, merchant_category: 'unseen' },
      { ...good, transaction_amount: 0 },
      { ...good, transaction_amount: -1 },
      { ...good, transaction_amount: Number.MAX_VALUE },
      { ...good, hour_of_day: 24 },
      { ...good, hour_of_day: 1.5 },
      { ...good, hour_of_day: -1 },
      { ...good, days_since_last_transaction: -0.1 },
      { ...good, days_since_last_transaction: 0 },
      { ...good, merchant_category: '' },
      { ...good, merchant_category: 'x'.repeat(64) },
      { ...good, merchant_category: 'x'.repeat(65) },
      { ...good, card_present: 'yes' },
      { ...good, extra: 1 },
      { ...good, id: 'a' },
      { transaction_amount: 1 },
    ];
    for (const c of cases) {
      const a = fromManifest.safeParse(c);
      const b = FraudRecordSchema.safeParse(c);
      assert.equal(a.success, b.success, JSON.stringify(c));
      if (!a.success && !b.success) {
        assert.deepEqual(
          a.error.issues.map((i) => i.path),
          b.error.issues.map((i) => i.path),
          JSON.stringify(c),
        );
      }
    }
  });
});
