/**
 * A `cond`'s branches on the GPU, run only when taken: the values that only one branch needs
 * (reachable from the outputs only through that branch input) are computed by kernels that
 * return at once unless their gate's flag is set. A gate kernel writes the flag from the
 * conditions on the GPU, so no condition is read back to the host. The flag is read from a
 * uniform buffer, which keeps the early return uniform control flow (kernels with barriers
 * may return before them). Nested conds compose: a value inside both branches' paths needs all
 * their conditions.
 *
 * Gating by indirect dispatch (workgroup counts written by the gate kernel) was tried first:
 * through Dawn's Vulkan backend each indirect dispatch cost about a millisecond on an H100,
 * far more than the work it saved.
 */
import type { KernelSpec } from '../../graph/gpu-kernel.js';
import type { Tensor } from '../../graph/tensor.js';

/** The condition values under which a value is needed: all must hold (a conjunction). */
export interface Gate {
  /** Each condition (a bool of one element, in a buffer of its own) and the value it must have. */
  terms: readonly { cond: Tensor; taken: boolean }[];
}

/** Conditions by tensor id and the value each must have; null: needed always. */
type Need = ReadonlyMap<number, boolean> | null;

/** The terms both needs share: a value needed under either is needed under their common part. */
function either(a: Need, b: Need): Need {
  if (!a || !b) return null;
  const both = new Map<number, boolean>();
  for (const [id, v] of a) if (b.get(id) === v) both.set(id, v);
  return both;
}

/** A host kernel run on the host: it reads its inputs whatever the conditions, so it is never gated. */
const onHost = (t: Tensor): boolean => t.op === 'host' && !(t.attrs as { gpu?: unknown }).gpu;

/**
 * The gate of every value in `order` (topological, from `roots`) that only a taken branch
 * needs; values absent are needed always. `source` follows views to what they show (a
 * condition's buffer).
 */
export function branchGates(
  order: readonly Tensor[],
  roots: readonly Tensor[],
  source: (t: Tensor) => Tensor,
): Map<number, Gate> {
  const need = new Map<number, Need>(roots.map((r) => [r.id, null]));
  const conds = new Map<number, Tensor>();
  for (let k = order.length - 1; k >= 0; k--) {
    const t = order[k]!;
    if (onHost(t)) need.set(t.id, null);
    const own = need.get(t.id) ?? null;
    t.inputs.forEach((u, i) => {
      let via = own;
      if (t.op === 'cond' && i > 0) {
        const c = source(t.inputs[0]!);
        conds.set(c.id, c);
        const terms = new Map(own ?? []);
        // under the same condition's other branch too (never needed): the first term stays
        if (!terms.has(c.id)) terms.set(c.id, i === 1);
        via = terms;
      }
      need.set(u.id, need.has(u.id) ? either(need.get(u.id)!, via) : via);
    });
  }
  const gates = new Map<string, Gate>();
  const out = new Map<number, Gate>();
  for (const [id, n] of need) {
    if (!n?.size) continue;
    const terms = [...n].sort((a, b) => a[0] - b[0]);
    const key = terms.map(([c, v]) => `${c}${v ? '+' : '-'}`).join(' ');
    let g = gates.get(key);
    if (!g) {
      g = { terms: terms.map(([c, taken]) => ({ cond: conds.get(c)!, taken })) };
      gates.set(key, g);
    }
    out.set(id, g);
  }
  return out;
}

/**
 * The gate kernel of `gate`: inputs the conditions, output one word, 1 where every condition
 * has its value, else 0 (the flag its kernels read).
 */
export function gateKernel(gate: Gate): KernelSpec {
  const n = gate.terms.length;
  const test = gate.terms.map((t, k) => `in${k}[0] ${t.taken ? '!=' : '=='} 0u`).join(' && ');
  const code = `${gate.terms.map((_, k) => `@group(0) @binding(${k}) var<storage, read> in${k}: array<u32>;`).join('\n')}
@group(0) @binding(${n}) var<storage, read_write> out: array<u32>;
@compute @workgroup_size(1)
fn main() {
  out[0] = select(0u, 1u, ${test});
}
`;
  return { code, inputs: n, grid: [1, 1, 1] };
}

/**
 * `code` (a kernel whose entry point is `main`) gated by the flag at uniform `binding` of group
 * 0: it returns at once where the flag is 0.
 */
export function gatedCode(code: string, binding: number): string {
  const entry = code.indexOf('@compute');
  const main = code.indexOf('fn main(', entry);
  if (entry < 0 || main < 0) throw new Error('a gated kernel needs a `@compute … fn main(…) {` entry point');
  const body = code.indexOf('{', main);
  return `${code.slice(0, entry)}@group(0) @binding(${binding}) var<uniform> xbar_gate: vec4<u32>;
${code.slice(entry, body + 1)}
  if (xbar_gate.x == 0u) { return; }${code.slice(body + 1)}`;
}
