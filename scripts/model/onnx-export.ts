// Turns trained models into ONNX: trees as one ai.onnx.ml TreeEnsembleClassifier with a LOGISTIC
// post-transform, a linear softmax as MatMul/Add/Softmax/ArgMax; written by the worker's ONNX
// graph writer (src/worker/onnx-graph.ts), which also turns XGBoost boosters into graphs.
import type { GbdtModel } from './gbdt.ts';
import {
  DataType,
  attrFloats,
  attrInt,
  attrInts,
  attrString,
  attrStrings,
  encodeModel,
  floatInitializer,
  node,
  tensorValue,
} from '../../src/worker/onnx-graph.ts';

export interface OnnxExportOptions {
  /** Graph input, float32 [N, width]. */
  inputName: string;
  /** Graph output with class probabilities, float32 [N, classes] (trees: [N, 2], column 1 the positive class). */
  probabilityName: string;
  /** Graph output with the predicted class, int64 [N]. */
  labelName: string;
  /** Free text stored in the model's doc_string. */
  docString?: string;
}

/**
 * Serializes the model. The bytes depend only on the trees and options (no timestamps), so the same
 * training run always gives the same file.
 */
export function exportGbdtToOnnx(model: GbdtModel, options: OnnxExportOptions): Uint8Array {
  const nodesTreeIds: number[] = [];
  const nodesNodeIds: number[] = [];
  const nodesModes: string[] = [];
  const nodesFeatureIds: number[] = [];
  const nodesValues: number[] = [];
  const nodesTrue: number[] = [];
  const nodesFalse: number[] = [];
  const classTreeIds: number[] = [];
  const classNodeIds: number[] = [];
  const classIds: number[] = [];
  const classWeights: number[] = [];

  model.trees.forEach((tree, treeId) => {
    for (let node = 0; node < tree.feature.length; node++) {
      const feature = tree.feature[node]!;
      nodesTreeIds.push(treeId);
      nodesNodeIds.push(node);
      if (feature >= 0) {
        // The trainer sends `x <= threshold` left, which is BRANCH_LEQ's true branch.
        nodesModes.push('BRANCH_LEQ');
        nodesFeatureIds.push(feature);
        nodesValues.push(tree.threshold[node]!);
        nodesTrue.push(tree.left[node]!);
        nodesFalse.push(tree.right[node]!);
      } else {
        nodesModes.push('LEAF');
        nodesFeatureIds.push(0);
        nodesValues.push(0);
        nodesTrue.push(0);
        nodesFalse.push(0);
        // One weight per leaf on class 0 with two class labels is the runtime's binary case: the
        // sum is the positive class's log-odds and LOGISTIC yields [1 − p, p].
        classTreeIds.push(treeId);
        classNodeIds.push(node);
        classIds.push(0);
        classWeights.push(tree.value[node]!);
      }
    }
  });

  const classifier = {
    name: 'fraud_trees',
    op_type: 'TreeEnsembleClassifier',
    domain: 'ai.onnx.ml',
    input: [options.inputName],
    output: [options.labelName, options.probabilityName],
    attribute: [
      attrFloats('base_values', [model.baseScore]),
      attrInts('class_ids', classIds),
      attrInts('class_nodeids', classNodeIds),
      attrInts('class_treeids', classTreeIds),
      attrFloats('class_weights', classWeights),
      attrInts('classlabels_int64s', [0, 1]),
      attrInts('nodes_falsenodeids', nodesFalse),
      attrInts('nodes_featureids', nodesFeatureIds),
      attrStrings('nodes_modes', nodesModes),
      attrInts('nodes_nodeids', nodesNodeIds),
      attrInts('nodes_treeids', nodesTreeIds),
      attrInts('nodes_truenodeids', nodesTrue),
      attrFloats('nodes_values', nodesValues),
      attrString('post_transform', 'LOGISTIC'),
    ],
  };

  return encodeModel({
    name: 'fraud_gbdt',
    producer: 'scoring-service scripts/model',
    docString: options.docString ?? '',
    nodes: [classifier],
    inputs: [tensorValue(options.inputName, DataType.FLOAT, ['N', model.width])],
    outputs: [tensorValue(options.labelName, DataType.INT64, ['N']), tensorValue(options.probabilityName, DataType.FLOAT, ['N', 2])],
  });
}

export interface LinearSoftmaxModel {
  /** Features per row. */
  width: number;
  classes: number;
  /** Row-major [width, classes]: the logit of class c gains weights[f·classes + c] per unit of feature f. */
  weights: Float32Array;
  /** [classes] */
  bias: Float32Array;
}

/**
 * A multinomial logistic regression as standard operators: probabilities = Softmax(x·W + b) and
 * label = ArgMax(probabilities). Deterministic bytes, as exportGbdtToOnnx.
 */
export function exportLinearSoftmaxToOnnx(model: LinearSoftmaxModel, options: OnnxExportOptions): Uint8Array {
  const { width, classes } = model;
  if (model.weights.length !== width * classes || model.bias.length !== classes) {
    throw new RangeError(`weights hold ${model.weights.length} values and bias ${model.bias.length}, expected ${width}×${classes} and ${classes}`);
  }
  return encodeModel({
    name: 'linear_softmax',
    producer: 'scoring-service scripts/model',
    docString: options.docString ?? '',
    mlOps: false,
    initializers: [floatInitializer('weights', [width, classes], model.weights), floatInitializer('bias', [classes], model.bias)],
    nodes: [
      node('MatMul', [options.inputName, 'weights'], ['xw']),
      node('Add', ['xw', 'bias'], ['logits']),
      node('Softmax', ['logits'], [options.probabilityName], [attrInt('axis', 1)]),
      node('ArgMax', [options.probabilityName], [options.labelName], [attrInt('axis', 1), attrInt('keepdims', 0)]),
    ],
    inputs: [tensorValue(options.inputName, DataType.FLOAT, ['N', width])],
    outputs: [tensorValue(options.probabilityName, DataType.FLOAT, ['N', classes]), tensorValue(options.labelName, DataType.INT64, ['N'])],
  });
}
