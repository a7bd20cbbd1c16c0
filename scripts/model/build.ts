// `npm run model:build`: rebuilds the shipped models of the repository from nothing:
// models/fraud/1/ and models/species/1/ (model.onnx + manifest.json each). Fraud's trainer options
// can be overridden for experiments; the committed models use the defaults.
import { mkdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parseArgs } from 'node:util';
import { buildFraudModel, serializeManifest } from './build-fraud-model.ts';
import { SPECIES_MODEL, buildSpeciesModel } from './build-species-model.ts';

const { values } = parseArgs({
  options: {
    repository: { type: 'string', default: 'models' },
    seed: { type: 'string' },
    trees: { type: 'string' },
    'max-depth': { type: 'string' },
    'learning-rate': { type: 'string' },
    'min-leaf-size': { type: 'string' },
    'max-bins': { type: 'string' },
    l2: { type: 'string' },
  },
});

function numberOption(name: string, raw: string | undefined): number | undefined {
  if (raw === undefined) return undefined;
  const value = Number(raw);
  if (!Number.isFinite(value)) throw new Error(`--${name} must be a number, got ${JSON.stringify(raw)}`);
  return value;
}

const trainer = Object.fromEntries(
  Object.entries({
    trees: numberOption('trees', values.trees),
    maxDepth: numberOption('max-depth', values['max-depth']),
    learningRate: numberOption('learning-rate', values['learning-rate']),
    minLeafSize: numberOption('min-leaf-size', values['min-leaf-size']),
    maxBins: numberOption('max-bins', values['max-bins']),
    l2: numberOption('l2', values.l2),
  }).filter(([, v]) => v !== undefined),
);

const started = performance.now();
const { onnx, manifest, trainSeconds } = buildFraudModel({ seed: numberOption('seed', values.seed), trainer });
const outDir = resolve(values.repository, 'fraud', '1');
mkdirSync(outDir, { recursive: true });
writeFileSync(join(outDir, manifest.file), onnx);
writeFileSync(join(outDir, 'manifest.json'), serializeManifest(manifest));

const { metrics, thresholds } = manifest;
console.log(`wrote ${join(outDir, manifest.file)} (${onnx.length} bytes, sha256 ${manifest.sha256})`);
console.log(`version ${manifest.version}; trainer ${JSON.stringify(manifest.trainer)}`);
console.log(
  `held-out ${metrics.rows} rows: ROC AUC ${metrics.roc_auc.toFixed(4)}, log loss ${metrics.log_loss.toFixed(5)}, ` +
    `fraud rate ${(metrics.fraud_rate * 100).toFixed(2)} %`,
);
console.log(
  `thresholds approve < ${thresholds.approve}, review < ${thresholds.review}: ` +
    `approve ${(metrics.decisions.approve * 100).toFixed(1)} %, review ${(metrics.decisions.review * 100).toFixed(1)} %, ` +
    `decline ${(metrics.decisions.decline * 100).toFixed(1)} %, fraud caught ${(metrics.decisions.fraud_caught * 100).toFixed(1)} %`,
);
console.log(`training ${trainSeconds.toFixed(1)} s, whole build ${((performance.now() - started) / 1000).toFixed(1)} s`);

const species = buildSpeciesModel();
const speciesDir = resolve(values.repository, SPECIES_MODEL.name, '1');
mkdirSync(speciesDir, { recursive: true });
writeFileSync(join(speciesDir, 'model.onnx'), species.onnx);
writeFileSync(join(speciesDir, 'manifest.json'), species.manifestText);
const speciesMetrics = species.manifest.metrics as { rows: number; accuracy: number };
console.log(
  `wrote ${join(speciesDir, 'model.onnx')} (${species.onnx.length} bytes); held-out ${speciesMetrics.rows} rows: ` +
    `accuracy ${(speciesMetrics.accuracy * 100).toFixed(1)} %`,
);
