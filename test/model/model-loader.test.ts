// The one loader (loadModelVersion) refuses anything but the exact files a manifest describes,
// naming the file and the problem. Each case damages a private copy of the committed model.
import { test, describe, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { cp, mkdtemp, readFile, rm, truncate, unlink, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ModelLoadError, loadModelVersion } from '../../src/worker/model-version.ts';
import type { FraudCard as ModelManifest } from '../../scripts/model/fraud-card.ts';
import { generateFraudRecords } from '../../scripts/model/fraud-data.ts';

const COMMITTED = new URL('../../models/fraud/1/', import.meta.url).pathname;

const loadModel = (dir: string) => loadModelVersion(dir, 'fraud', 1);

describe('loadModelVersion', () => {
  let root: string;
  let n = 0;
  before(async () => {
    root = await mkdtemp(join(tmpdir(), 'fraud-model-'));
  });
  after(() => rm(root, { recursive: true, force: true }));

  async function copyModel(): Promise<{ dir: string; onnx: string; manifestFile: string; manifest: ModelManifest }> {
    const dir = join(root, `case-${n++}`);
    await cp(COMMITTED, dir, { recursive: true });
    const manifestFile = join(dir, 'manifest.json');
    const manifest = JSON.parse(await readFile(manifestFile, 'utf8')) as ModelManifest;
    return { dir, onnx: join(dir, manifest.file), manifestFile, manifest };
  }

  async function assertLoadError(dir: string, file: string, problem: RegExp): Promise<void> {
    await assert.rejects(loadModel(dir), (error: unknown) => {
      assert.ok(error instanceof ModelLoadError, `expected ModelLoadError, got ${String(error)}`);
      assert.equal(error.name, 'ModelLoadError');
      assert.equal(error.file, file);
      assert.ok(error.message.startsWith(`${file}: `), error.message);
      assert.match(error.message, problem);
      return true;
    });
  }

  test('loads the committed model and scores records in order', async () => {
    const model = await loadModel(COMMITTED);
    try {
      assert.equal(model.encoder!.width, 17);
      assert.equal(model.displayVersion, model.manifest!.version);
      const records = generateFraudRecords(5, 300);
      const all = await model.probabilities(records);
      assert.equal(all.length, 300);
      const single = await model.probabilities([records[123]!]);
      assert.equal(single[0], all[123]);
      for (const p of all) assert.ok(p > 0 && p < 1);
      assert.deepEqual(await model.probabilities([]), new Float32Array(0));
      await assert.rejects(model.scoreEncoded(new Float32Array(16), 1), RangeError);
    } finally {
      await model.retire();
    }
  });

  test('retire is idempotent and scoring afterwards fails', async () => {
    const model = await loadModel(COMMITTED);
    const first = model.retire();
    assert.equal(model.retire(), first);
    await first;
    await assert.rejects(model.probabilities(generateFraudRecords(1, 1)), /closed/);
  });

  test('without its manifest the file is a bare model, served by its graph signature', async () => {
    const { dir, manifestFile } = await copyModel();
    await unlink(manifestFile);
    const model = await loadModel(dir);
    try {
      assert.equal(model.recordEncoding, undefined);
      assert.deepEqual(
        model.signature.inputs.map((i) => i.name),
        ['features'],
      );
    } finally {
      await model.retire();
    }
  });

  test('a missing ONNX file', async () => {
    const { dir, onnx } = await copyModel();
    await unlink(onnx);
    await assertLoadError(dir, onnx, /missing/);
  });

  test('a manifest that is not JSON or not a manifest', async () => {
    const { dir, manifestFile, manifest } = await copyModel();
    await writeFile(manifestFile, '{"name": "fraud",');
    await assertLoadError(dir, manifestFile, /not valid JSON/);
    await writeFile(manifestFile, JSON.stringify({ ...manifest, sha256: 'abc' }));
    await assertLoadError(dir, manifestFile, /not a valid manifest[\s\S]*sha256/);
  });

  test('one flipped byte is a sha256 mismatch', async () => {
    const { dir, onnx } = await copyModel();
    const bytes = await readFile(onnx);
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await writeFile(onnx, bytes);
    await assertLoadError(dir, onnx, /sha256 mismatch/);
  });

  test('a truncated file', async () => {
    const { dir, onnx, manifest } = await copyModel();
    await truncate(onnx, manifest.bytes - 1000);
    await assertLoadError(dir, onnx, new RegExp(`truncated: ${manifest.bytes - 1000} bytes, manifest says ${manifest.bytes}`));
  });

  test('a file whose sha256 matches but that is not ONNX (a corrupt protobuf)', async () => {
    const { dir, onnx, manifestFile, manifest } = await copyModel();
    const bytes = (await readFile(onnx)).subarray(0, 5000);
    await writeFile(onnx, bytes);
    const sha256 = createHash('sha256').update(bytes).digest('hex');
    await writeFile(manifestFile, JSON.stringify({ ...manifest, bytes: bytes.length, sha256 }));
    await assertLoadError(dir, onnx, /not a loadable ONNX model/);
  });

  test('a manifest whose input name differs from the graph', async () => {
    const { dir, onnx, manifestFile, manifest } = await copyModel();
    await writeFile(manifestFile, JSON.stringify({ ...manifest, input: { ...manifest.input, name: 'x' } }));
    await assertLoadError(dir, onnx, /does not match .*manifest\.json: inputs are \[features\], manifest expects \[x\]/);
  });

  test('a manifest whose output name differs from the graph', async () => {
    const { dir, onnx, manifestFile, manifest } = await copyModel();
    await writeFile(manifestFile, JSON.stringify({ ...manifest, output: { ...manifest.output, name: 'scores' } }));
    await assertLoadError(dir, onnx, /outputs are \[label, probabilities\], manifest expects scores/);
  });

  test('a manifest whose probability column is outside the output', async () => {
    const { dir, onnx, manifestFile, manifest } = await copyModel();
    await writeFile(manifestFile, JSON.stringify({ ...manifest, output: { ...manifest.output, probability_column: 2 } }));
    await assertLoadError(dir, onnx, /output probabilities has shape \[N, 2\], manifest reads column 2/);
  });

  test('a manifest that encodes a different feature width than the graph takes', async () => {
    const { dir, onnx, manifestFile, manifest } = await copyModel();
    const features = manifest.input.features.map((f) =>
      f.encoding === 'one_hot' ? { ...f, vocabulary: f.vocabulary.slice(1), unknown_code: f.vocabulary.length - 1 } : f,
    );
    await writeFile(manifestFile, JSON.stringify({ ...manifest, input: { ...manifest.input, features, width: manifest.input.width - 1 } }));
    await assertLoadError(dir, onnx, /input features has shape \[N, 17\], manifest encodes 16 features per row/);
  });
});
