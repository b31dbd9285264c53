// Small seeded analog MVM cases (noise on) whose outputs must not change when bound management
// is 'none'. `lib` holds the xbar exports of one build; `sets` are extra spec overrides.
const randn = (lib, shape, seed, std = 1) =>
  lib.hostArray('float32', shape, new lib.Rng(seed).fillNormal(new Float32Array(shape.reduce((a, b) => a * b, 1)), 0, std));

// The PCM cases keep the noise-free drift compensation their numbers were made with (the
// presets now read the gain through the periphery, which draws noise of its own).
const PCM = ['driftCompensation=global-ideal'];

async function linear(lib, hw, sets, [n, inD, outD], wStd) {
  const w = randn(lib, [inD, outD], 11, wStd);
  const x = randn(lib, [n, inD], 12);
  const y = new lib.AnalogModel(lib.loadSpec(hw, [...(hw.startsWith('pcm') ? PCM : []), ...sets]), 3).linear('layer.0.ffnIn', lib.input('x', [n, inD]), lib.param('w', w));
  const g = await lib.compile({ y }, { cache: false });
  return (await g.run({ x }))['y'].data;
}

async function dynamic(lib, hw, sets) {
  const xbar = lib.loadSpec(hw, sets).attention;
  const x = randn(lib, [1, 2, 3, 70], 13);
  const w = randn(lib, [1, 2, 70, 5], 14);
  const y = lib.dynamicProduct(lib.input('x', [1, 2, 3, 70]), lib.input('w', [1, 2, 70, 5]), xbar, 5);
  const g = await lib.compile({ y }, { cache: false });
  return (await g.run({ x, w }))['y'].data;
}

export const CASES = [
  { name: 'pcm-aihwkit 600x40', run: (lib, sets) => linear(lib, 'pcm-aihwkit', sets, [3, 600, 40], 0.3) },
  { name: 'pcm-aihwkit 600x40 saturating', run: (lib, sets) => linear(lib, 'pcm-aihwkit', sets, [3, 600, 40], 1.5) },
  // pcm-lammie's output σ when the fixture was made (the preset now takes aihwkit's 0.06)
  {
    name: 'pcm-lammie 600x40',
    run: (lib, sets) => linear(lib, 'pcm-lammie', [...sets, 'outputNoise.sigma=0.04'], [3, 600, 40], 0.3),
  },
  { name: 'rram-clipformer 70x20', run: (lib, sets) => linear(lib, 'rram-clipformer', sets, [2, 70, 20], 0.3) },
  { name: 'fefet-trex K/V', run: (lib, sets) => dynamic(lib, 'fefet-trex', sets) },
];
