/** The engine: symbolic tensors, primitives, autodiff, ONNX lowering. */
export { grad, topoSort, unbroadcast } from './autodiff.js';
export { f32, type HostArray, hostArray, i32, type RefArray } from './ndarray.js';
export { crossEntropy, gelu, layerNorm, linear, mse, oneHot } from './nn.js';
export { type LoweredGraph, lowerToOnnx, OPSET } from './onnx.js';
export { type AttrsOf, OPS, type OpName } from './ops.js';
export { evaluateRef } from './reference.js';
export { type DType, GraphError, type Shape } from './shape.js';
export {
  apply,
  concat,
  cond,
  constant,
  input,
  pad,
  param,
  randomNormal,
  randomUniform,
  scalar,
  Tensor,
  where,
} from './tensor.js';
