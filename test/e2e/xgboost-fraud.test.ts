// models/fraud/2 is an XGBoost booster (scripts/model/train-xgboost.py) beside the project's GBDT
// (version 1), both on the same generated data and record encoding. Through /jobs with real
// processes, both score the held-out rows of the reference data; the booster's AUC must be within
// 0.005 of the GBDT's, and /predict (champion) must still answer with version 1.
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { rm } from 'node:fs/promises';
import { startTestRedis, type TestRedis } from '../helpers/redis-server.ts';
import { startApi, startWorker, type ServiceProcess } from '../helpers/processes.ts';
import { postJson, request } from '../helpers/http.ts';
import { waitFor } from '../helpers/wait.ts';
import { tempRepository } from '../helpers/model-repository.ts';
import { REFERENCE_DATA, generateFraudRows } from '../../scripts/model/fraud-data.ts';
import { rocAuc } from '../../scripts/model/metrics.ts';

describe('fraud version 2 (XGBoost) beside version 1 (GBDT), through /jobs', { timeout: 120_000 }, () => {
  let redis: TestRedis;
  let root: string;
  let api: ServiceProcess;
  let worker: ServiceProcess;

  before(async () => {
    root = await tempRepository('xgboost-fraud', ['fraud']);
    redis = await startTestRedis();
    const env = { REDIS_URL: redis.url, QUEUE_PREFIX: 'xgbfraud', MODEL_REPOSITORY: root };
    [api, worker] = await Promise.all([startApi(env), startWorker(env)]);
  });
  after(async () => {
    await Promise.all([api, worker].filter(Boolean).map((p) => p.stop()));
    await redis?.close();
    if (root) await rm(root, { recursive: true, force: true });
  });

  test('both versions load; champion stays on 1, so /predict answers as before', async () => {
    await waitFor(
      async () => {
        const res = await request(`${api.url}/models/fraud`);
        return res.body.versions?.filter((v: { state: string }) => v.state === 'loaded').length === 2 ? true : undefined;
      },
      { what: 'fraud 1 and 2 loaded', timeoutMs: 30_000 },
    );
    const record = { transaction_amount: 120, merchant_category: 'jewelry', card_present: false, hour_of_day: 3, days_since_last_transaction: 0.01 };
    const res = await postJson(`${api.url}/predict`, record);
    assert.equal(res.status, 200, JSON.stringify(res.body));
    assert.match(String(res.body.model_version), /^fraud-gbdt-/);
    const v2 = await postJson(`${api.url}/models/fraud/versions/2/predict`, record);
    assert.equal(v2.status, 200, JSON.stringify(v2.body));
    assert.match(String(v2.body.model_version), /^fraud-xgboost-/);
    assert.ok(['approve', 'review', 'decline'].includes(v2.body.decision), JSON.stringify(v2.body));
  });

  test('version 2 over the Open Inference Protocol: the same five fields in, the same probabilities as /predict/batch', async () => {
    const records = generateFraudRows(7, 20).map(({ is_fraud: _label, ...r }) => r);
    const batch = await postJson(`${api.url}/models/fraud/versions/2/predict/batch`, { records });
    assert.equal(batch.status, 200, JSON.stringify(batch.body));
    const res = await postJson(`${api.url}/v2/models/fraud/versions/2/infer`, {
      inputs: [
        { name: 'transaction_amount', shape: [20], datatype: 'FP32', data: records.map((r) => r.transaction_amount) },
        { name: 'merchant_category', shape: [20], datatype: 'BYTES', data: records.map((r) => r.merchant_category) },
        { name: 'card_present', shape: [20], datatype: 'BOOL', data: records.map((r) => r.card_present) },
        { name: 'hour_of_day', shape: [20], datatype: 'INT32', data: records.map((r) => r.hour_of_day) },
        { name: 'days_since_last_transaction', shape: [20], datatype: 'FP32', data: records.map((r) => r.days_since_last_transaction) },
      ],
    });
    assert.equal(res.status, 200, JSON.stringify(res.body));
    const probability = res.body.outputs.find((o: { name: string }) => o.name === 'fraud_probability');
    assert.deepEqual(
      probability.data,
      batch.body.results.map((r: { fraud_probability: number }) => r.fraud_probability),
    );
  });

  test('held-out rows scored through /jobs: the XGBoost AUC is within 0.005 of the GBDT one', async () => {
    const rows = generateFraudRows(REFERENCE_DATA.seed, REFERENCE_DATA.rows).slice(REFERENCE_DATA.trainRows);
    const body = rows.map(({ is_fraud: _label, ...record }) => JSON.stringify(record)).join('\n') + '\n';
    const labels = rows.map((r) => r.is_fraud);
    const auc: Record<string, number> = {};
    for (const version of ['1', '2']) {
      const submitted = await request(`${api.url}/jobs?model=fraud&version=${version}`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-ndjson' },
        body,
      });
      assert.equal(submitted.status, 202, JSON.stringify(submitted.body));
      const jobId = submitted.body.job_id as string;
      const job = await waitFor(
        async () => {
          const res = await request(`${api.url}/jobs/${jobId}`);
          if (res.body.status === 'failed') throw new Error(`job ${jobId} failed: ${JSON.stringify(res.body)}`);
          return res.body.status === 'completed' ? res.body : undefined;
        },
        { what: `version ${version}'s job completed`, timeoutMs: 90_000 },
      );
      const res = await fetch(`${api.url}/jobs/${jobId}/results`, { headers: { accept: 'application/x-ndjson' } });
      assert.equal(res.status, 200);
      const results = (await res.text())
        .split('\n')
        .filter(Boolean)
        .map((l) => JSON.parse(l) as { fraud_probability: number });
      assert.equal(results.length, rows.length);
      assert.equal(job.model_version_number, Number(version));
      assert.match(job.model_version, version === '1' ? /^fraud-gbdt-/ : /^fraud-xgboost-/);
      assert.deepEqual(job.scored_by, { [job.model_version]: rows.length });
      auc[version] = rocAuc(
        labels,
        results.map((r) => r.fraud_probability),
      );
    }
    console.log(`held-out AUC over ${rows.length} rows through /jobs: GBDT ${auc['1']!.toFixed(5)}, XGBoost ${auc['2']!.toFixed(5)}`);
    assert.ok(auc['2']! > 0.85, `XGBoost AUC ${auc['2']}`);
    assert.ok(Math.abs(auc['2']! - auc['1']!) <= 0.005, `XGBoost ${auc['2']} against GBDT ${auc['1']}`);
  });
});
