// An XGBoost booster as saved (xgboost.json, or xgboost.ubj: the same document in UBJSON) → an
// ONNX graph onnxruntime runs: one ai.onnx.ml TreeEnsembleRegressor that sums the trees into the
// margin, then the objective's own transform as standard operators (Sigmoid, Softmax, Exp,
// ArgMax). The regressor's post_transform stays NONE: onnxruntime issues #26596, #24862 and
// #27533 show it skipped or wrong in some cases, and separate nodes are plain to check.
//
// The rules are XGBoost's own (src/tree/tree_model.cc, src/predictor/cpu_predictor.cc):
// - a split sends a row left when x < split_condition, both float32 (BRANCH_LT on float input);
// - a missing value (NaN) follows default_left (nodes_missing_value_tracks_true);
// - a leaf's value is split_conditions[i] (base_weights is the unshrunk weight, never predicted);
// - tree t adds to class tree_info[t], num_parallel_tree > 1 included;
// - base_score is stored in probability space: its margin is the logit for binary:logistic, the
//   log for count:poisson and reg:gamma / reg:tweedie, and itself for reg:squarederror and
//   multi:*; it reads "5E-1" and "[5E-1]" alike;
// - a dart booster's tree t is weighted by weight_drop[t];
// - pruned nodes stay in the arrays, unreachable from the root: the walk from the root skips them.
// What the conversion cannot serve faithfully is refused with the reason, never served wrong.
import {
  DataType,
  attrFloats,
  attrInt,
  attrInts,
  attrString,
  attrStrings,
  encodeModel,
  floatInitializer,
  int64Initializer,
  node,
  tensorValue,
} from './onnx-graph.ts';
import { parseUbjson } from './ubjson.ts';

export const XGBOOST_FILES = ['xgboost.json', 'xgboost.ubj'] as const;
/** Triton FIL's input name, so FIL clients work unchanged over the Open Inference Protocol. */
export const XGBOOST_INPUT = 'input__0';

export class XgboostRefusal extends Error {
  constructor(message: string) {
    super(message);
    this.name = this.constructor.name;
  }
}

type Transform = 'sigmoid' | 'identity' | 'exp' | 'softmax' | 'argmax';

/** The objectives served, the transform of each, and how base_score becomes a margin. */
const OBJECTIVES: Record<
  string,
  { transform: Transform; output: 'probability' | 'prediction' | 'probabilities' | 'label'; margin: (p: number) => number }
> = {
  'binary:logistic': { transform: 'sigmoid', output: 'probability', margin: (p) => Math.log(p / (1 - p)) },
  'reg:squarederror': { transform: 'identity', output: 'prediction', margin: (p) => p },
  'count:poisson': { transform: 'exp', output: 'prediction', margin: (p) => Math.log(p) },
  'reg:gamma': { transform: 'exp', output: 'prediction', margin: (p) => Math.log(p) },
  'reg:tweedie': { transform: 'exp', output: 'prediction', margin: (p) => Math.log(p) },
  'multi:softprob': { transform: 'softmax', output: 'probabilities', margin: (p) => p },
  'multi:softmax': { transform: 'argmax', output: 'label', margin: (p) => p },
};

export type ConvertedBooster = {
  onnx: Uint8Array;
  objective: string;
  /** The booster's feature_names, or f0…f{F-1}: the record fields, in column order. */
  features: string[];
  /** The graph's one output: probability [N], probabilities [N, K], label [N] or prediction [N]. */
  output: { name: string; classes: number | null };
};

type Numbers = ArrayLike<number>;
type Json = Record<string, unknown>;

function obj(value: unknown, where: string): Json {
  if (!value || typeof value !== 'object' || Array.isArray(value) || ArrayBuffer.isView(value)) {
    throw new XgboostRefusal(`${where} is missing or not an object`);
  }
  return value as Json;
}
function nums(value: unknown, where: string): Numbers {
  if (Array.isArray(value) || ArrayBuffer.isView(value)) return value as unknown as Numbers;
  throw new XgboostRefusal(`${where} is missing or not an array`);
}
function int(value: unknown, where: string): number {
  const n = Number(value);
  if (!Number.isFinite(n)) throw new XgboostRefusal(`${where} is not a number (${String(value)})`);
  return n;
}

/** "5E-1" and "[5E-1]" alike (XGBoost 2 writes the bracketed form). */
export function parseBaseScore(value: unknown): number {
  const text = String(value)
    .trim()
    .replace(/^\[(.*)\]$/, '$1');
  const n = Number(text);
  if (text === '' || !Number.isFinite(n)) throw new XgboostRefusal(`base_score ${String(value)} is not a number`);
  return n;
}

/** The booster document from a file's bytes: JSON for .json, UBJSON for .ubj; anything else is the legacy binary format. */
export function readBooster(file: string, bytes: Uint8Array): Json {
  const first = bytes[0];
  if (first !== 0x7b /* { */) {
    throw new XgboostRefusal(`${file} is not a JSON or UBJSON booster (the legacy binary format?); save it with booster.save_model('xgboost.json')`);
  }
  try {
    return obj(file.endsWith('.ubj') ? parseUbjson(bytes) : JSON.parse(Buffer.from(bytes).toString('utf8')), file);
  } catch (err) {
    if (err instanceof XgboostRefusal) throw err;
    throw new XgboostRefusal(`${file} cannot be read: ${(err as Error).message}`);
  }
}

export function convertBooster(doc: Json): ConvertedBooster {
  const learner = obj(doc.learner, 'learner');
  const params = obj(learner.learner_model_param, 'learner.learner_model_param');
  const objective = String(obj(learner.objective, 'learner.objective').name);
  const spec = OBJECTIVES[objective];
  if (!spec) throw new XgboostRefusal(`objective ${objective} is not served (served: ${Object.keys(OBJECTIVES).join(', ')})`);

  const booster = obj(learner.gradient_booster, 'learner.gradient_booster');
  const kind = String(booster.name);
  if (kind === 'gblinear') throw new XgboostRefusal('gblinear boosters are not served: only tree boosters (gbtree, dart)');
  if (kind !== 'gbtree' && kind !== 'dart') throw new XgboostRefusal(`booster ${kind} is not served: only gbtree and dart`);
  const model = obj(kind === 'dart' ? obj(booster.gbtree, 'gbtree').model : booster.model, 'gradient_booster.model');
  const weightDrop = kind === 'dart' ? nums(booster.weight_drop, 'weight_drop') : undefined;

  if (int(params.num_target ?? 1, 'num_target') > 1) throw new XgboostRefusal('multi-output trees (num_target > 1) are not served');
  const featureTypes = Array.isArray(learner.feature_types) ? (learner.feature_types as unknown[]) : [];
  if (featureTypes.includes('c')) {
    throw new XgboostRefusal('categorical features are not served (feature_types has "c"); one-hot encode them before training');
  }
  const width = int(params.num_feature, 'num_feature');
  const names =
    Array.isArray(learner.feature_names) && learner.feature_names.length === width ? (learner.feature_names as unknown[]).map(String) : [];
  const features = names.length > 0 ? names : Array.from({ length: width }, (_, i) => `f${i}`);
  const multi = objective.startsWith('multi:');
  const classes = multi ? int(params.num_class, 'num_class') : 1;
  if (multi && classes < 2) throw new XgboostRefusal(`${objective} with num_class ${classes}`);

  const trees = (model.trees as unknown[] | undefined) ?? [];
  const treeInfo = nums(model.tree_info, 'tree_info');
  if (treeInfo.length !== trees.length) throw new XgboostRefusal(`tree_info has ${treeInfo.length} entries for ${trees.length} trees`);

  const n = { tree: [] as number[], id: [] as number[], feature: [] as number[], mode: [] as string[], value: [] as number[] };
  const branch = { yes: [] as number[], no: [] as number[], missingYes: [] as number[] };
  const target = { tree: [] as number[], node: [] as number[], id: [] as number[], weight: [] as number[] };

  trees.forEach((raw, t) => {
    const tree = obj(raw, `tree ${t}`);
    const param = obj(tree.tree_param, `tree ${t} tree_param`);
    if (int(param.size_leaf_vector ?? 0, 'size_leaf_vector') > 1) {
      throw new XgboostRefusal(`tree ${t} has vector leaves (multi-output trees are not served)`);
    }
    const left = nums(tree.left_children, `tree ${t} left_children`);
    const right = nums(tree.right_children, `tree ${t} right_children`);
    const split = nums(tree.split_indices, `tree ${t} split_indices`);
    const cond = nums(tree.split_conditions, `tree ${t} split_conditions`);
    const defaultLeft = nums(tree.default_left, `tree ${t} default_left`);
    const splitType = tree.split_type === undefined ? [] : nums(tree.split_type, `tree ${t} split_type`);
    const categorical = tree.categories_nodes === undefined ? [] : nums(tree.categories_nodes, `tree ${t} categories_nodes`);
    if (categorical.length > 0 || Array.from(splitType).some((s) => s !== 0)) {
      throw new XgboostRefusal(`tree ${t} has categorical splits, which are not served`);
    }
    const cls = int(treeInfo[t], `tree_info[${t}]`);
    if (cls < 0 || cls >= classes) throw new XgboostRefusal(`tree ${t} adds to class ${cls} of ${classes}`);
    // float32, as XGBoost holds them: a .json and a .ubj of one booster then give the same graph.
    const scale = weightDrop ? Math.fround(int(weightDrop[t], `weight_drop[${t}]`)) : 1;

    // Reachable nodes only, numbered in the order the walk meets them.
    const ids = new Map<number, number>([[0, 0]]);
    const order = [0];
    for (let k = 0; k < order.length; k++) {
      const i = order[k]!;
      for (const child of [left[i]!, right[i]!]) {
        if (child === -1) continue;
        if (child < 0 || child >= left.length || ids.has(child)) throw new XgboostRefusal(`tree ${t} is not a tree at node ${i}`);
        ids.set(child, order.length);
        order.push(child);
      }
    }
    for (const i of order) {
      n.tree.push(t);
      n.id.push(ids.get(i)!);
      if (left[i] === -1) {
        n.mode.push('LEAF');
        n.feature.push(0);
        n.value.push(0);
        branch.yes.push(0);
        branch.no.push(0);
        branch.missingYes.push(0);
        target.tree.push(t);
        target.node.push(ids.get(i)!);
        target.id.push(cls);
        target.weight.push(Math.fround(Math.fround(cond[i]!) * scale));
      } else {
        const feature = split[i]!;
        if (feature < 0 || feature >= width) throw new XgboostRefusal(`tree ${t} splits on feature ${feature} of ${width}`);
        n.mode.push('BRANCH_LT');
        n.feature.push(feature);
        n.value.push(cond[i]!);
        branch.yes.push(ids.get(left[i]!)!);
        branch.no.push(ids.get(right[i]!)!);
        branch.missingYes.push(defaultLeft[i] ? 1 : 0);
      }
    }
  });

  const baseMargin = spec.margin(parseBaseScore(params.base_score));
  if (!Number.isFinite(baseMargin)) throw new XgboostRefusal(`base_score ${String(params.base_score)} has no margin under ${objective}`);
  const ensemble = node(
    'TreeEnsembleRegressor',
    [XGBOOST_INPUT],
    ['margin'],
    [
      attrString('aggregate_function', 'SUM'),
      attrFloats(
        'base_values',
        Array.from({ length: classes }, () => baseMargin),
      ),
      attrInt('n_targets', classes),
      attrInts('nodes_falsenodeids', branch.no),
      attrInts('nodes_featureids', n.feature),
      attrInts('nodes_missing_value_tracks_true', branch.missingYes),
      attrStrings('nodes_modes', n.mode),
      attrInts('nodes_nodeids', n.id),
      attrInts('nodes_treeids', n.tree),
      attrInts('nodes_truenodeids', branch.yes),
      attrFloats('nodes_values', n.value),
      attrString('post_transform', 'NONE'),
      attrInts('target_ids', target.id),
      attrInts('target_nodeids', target.node),
      attrInts('target_treeids', target.tree),
      attrFloats('target_weights', target.weight),
    ],
    'ai.onnx.ml',
  );

  const out = spec.output;
  const flat = [int64Initializer('flat', [1], [-1])];
  const tail: Record<Transform, { nodes: object[]; type: number; dims: (number | string)[]; initializers: object[] }> = {
    // 1 / (1 + exp(-x)), XGBoost's own formula: onnxruntime's Sigmoid kernel is an approximation
    // that differs from it by 3e-5 (relative) on small probabilities.
    sigmoid: {
      nodes: [
        node('Neg', ['margin'], ['negated']),
        node('Exp', ['negated'], ['odds_against']),
        node('Add', ['odds_against', 'one'], ['denominator']),
        node('Reciprocal', ['denominator'], ['sigmoid']),
        node('Reshape', ['sigmoid', 'flat'], [out]),
      ],
      type: DataType.FLOAT,
      dims: ['N'],
      initializers: [...flat, floatInitializer('one', [], [1])],
    },
    identity: { nodes: [node('Reshape', ['margin', 'flat'], [out])], type: DataType.FLOAT, dims: ['N'], initializers: flat },
    exp: {
      nodes: [node('Exp', ['margin'], ['exp']), node('Reshape', ['exp', 'flat'], [out])],
      type: DataType.FLOAT,
      dims: ['N'],
      initializers: flat,
    },
    softmax: { nodes: [node('Softmax', ['margin'], [out], [attrInt('axis', 1)])], type: DataType.FLOAT, dims: ['N', classes], initializers: [] },
    argmax: {
      nodes: [node('ArgMax', ['margin'], [out], [attrInt('axis', 1), attrInt('keepdims', 0)])],
      type: DataType.INT64,
      dims: ['N'],
      initializers: [],
    },
  };
  const { nodes, type, dims, initializers } = tail[spec.transform];
  const onnx = encodeModel({
    name: 'xgboost',
    producer: 'scoring-service xgboost-onnx',
    docString: `XGBoost ${objective} booster (${kind}, ${trees.length} trees), converted at load time`,
    nodes: [ensemble, ...nodes],
    inputs: [tensorValue(XGBOOST_INPUT, DataType.FLOAT, ['N', width])],
    outputs: [tensorValue(out, type, dims)],
    initializers,
  });
  return { onnx, objective, features, output: { name: out, classes: multi ? classes : null } };
}
