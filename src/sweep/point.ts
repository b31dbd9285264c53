/**
 * One point of a sweep: one Monte Carlo instance (the point's seed) of what `xbar eval` measures
 * on hardware, or the model's metric where the point names no hardware. Its metrics: the task
 * metric with its 95 % interval over the examples, the ideal (floating-point) metric, the cost
 * (energy, delay, area, EDAP) and, when asked, the attention SNR.
 *
 * A runner keeps what points share between them (loaded models, opened data, a hardware spec
 * resolved for a model with its calibrated ranges): loading is most of a small point's time. It
 * runs one point at a time (an instance's cells are reused by the next of its hardware).
 */
import { analogInstances } from '../analog/instances.js';
import { loadSpec } from '../analog/presets.js';
import type { ResolvedSpec } from '../analog/resolve.js';
import type { CostReport } from '../cost/cost.js';
import { noCostReason } from '../cost/mapping.js';
import { type EvalData, openData, parseDataSpec, type Split } from '../eval/data.js';
import { evaluate } from '../eval/evaluate.js';
import { metricInterval95 } from '../eval/metrics.js';
import type { Instance } from '../eval/montecarlo.js';
import { type ClipFormerConfig, costBeta, parseClipFormer } from '../methods/clipformer.js';
import { prepareInstances } from '../methods/prepare.js';
import { measureSnr, snrDb } from '../methods/snr.js';
import { modelCost } from '../methods/trex/cost.js';
import { loadModel, type Model } from '../models/index.js';
import type { Provider } from '../runtime/session.js';
import { DEFAULTS } from './file.js';
import { hardwareSetsOf, settingNumber as num, settingText as str } from './settings.js';
import { TASKS } from './tasks.js';
import type { Point, PointResult, RunPoint, TaskContext } from './types.js';

/** The few most recently used values of a key: a worker's memory stays bounded over a long sweep. */
class Recent<V> {
  private readonly map = new Map<string, V>();
  constructor(private readonly size: number) {}
  async get(key: string, make: () => V | Promise<V>): Promise<V> {
    let v = this.map.get(key);
    if (v === undefined) {
      v = await make();
      if (this.map.size >= this.size) this.map.delete(this.map.keys().next().value!);
    } else this.map.delete(key);
    this.map.set(key, v);
    return v;
  }
}

/** A hardware spec resolved for a model, with its ranges and its cost. */
interface Prepared {
  hw: ResolvedSpec;
  instance: Instance;
  /** Null where the spec's technology has no cost numbers (`costless` says why). */
  cost: CostReport | null;
  costless: string | null;
  /** What calibrated its ranges set on data (the calibrations' lines), if any. */
  calibration: string[];
}

export interface PointRunnerOptions {
  /** Where the forwards run (the machine's choice, not the point's: results do not depend on it). */
  provider?: Provider;
  /** Notes of calibration and loading (default: none). */
  note?: (line: string) => void;
}

/** A `RunPoint` with its own caches. */
export function createPointRunner(o: PointRunnerOptions = {}): RunPoint {
  const provider = o.provider ?? 'cpu';
  const note = o.note ?? (() => {});
  const models = new Recent<Model>(2);
  const datas = new Recent<EvalData>(4);
  const ideals = new Recent<number>(8);
  const prepared = new Recent<Prepared>(2);
  const values = new Recent<unknown>(8);
  const model = (dir: string) => models.get(dir, () => loadModel(dir));
  const openFor = async (
    dir: string,
    spec: string,
    o: { split?: Split; limit?: number; maxLength?: number } = {},
  ): Promise<EvalData> => {
    const dataSpec = parseDataSpec(spec);
    const openOptions = { modelDir: dir, ...o, maxLength: o.maxLength ?? 128 };
    return datas.get(JSON.stringify([dir, dataSpec, openOptions]), async () =>
      openData(dataSpec, await model(dir), openOptions),
    );
  };

  return async (point: Point, run = {}) => {
    // a point given up (a queue's timeout) stops at the next step rather than running on
    const check = () => run.signal?.throwIfAborted();
    const s = point.settings;
    const taskName = str(s, 'task');
    if (taskName !== undefined) {
      const task = TASKS.get(taskName);
      if (!task) throw new Error(`point ${point.index}: task ${taskName} is not one this xbar runs`);
      const ctx: TaskContext = {
        provider,
        note,
        check,
        model,
        data: openFor,
        cached: <V>(key: string, make: () => Promise<V>) => values.get(key, make) as Promise<V>,
      };
      return task.run(point, ctx);
    }
    const dir = str(s, 'model')!;
    const dataSpec = parseDataSpec(str(s, 'data')!);
    const split = str(s, 'split') as Split | undefined;
    const limit = str(s, 'limit') === undefined ? undefined : num(s, 'limit', 0);
    const maxLength = num(s, 'maxLength', 128);
    const batch = num(s, 'batch', DEFAULTS.batch);
    const seed = num(s, 'seed', DEFAULTS.seed);
    const net = await model(dir);
    const openOptions = { maxLength, ...(split ? { split } : {}), ...(limit ? { limit } : {}) };
    const data = await openFor(dir, str(s, 'data')!, openOptions);
    const ideal = await ideals.get(JSON.stringify([dir, dataSpec, openOptions, batch]), async () => {
      const r = await evaluate(net, data, { batch, provider });
      return r.value;
    });

    check();
    const hwName = str(s, 'hw');
    const metrics: Record<string, number> = { examples: data.size, ideal };
    const labels: Record<string, string> = { data: data.name };
    let r: { metric: string; value: number; predictions: Float64Array };
    if (hwName === undefined) {
      r = await evaluate(net, data, { batch, provider });
    } else {
      const clipformer: ClipFormerConfig | undefined =
        s['method'] === 'clipformer'
          ? parseClipFormer(
              { alpha: s['clipformer.alpha'], beta: s['clipformer.beta'] },
              `point ${point.index}: clipformer`,
            )
          : undefined;
      const sets = hardwareSetsOf(s);
      const calibration = str(s, 'calibration');
      const key = JSON.stringify([dir, hwName, sets, clipformer, calibration ?? dataSpec, maxLength]);
      const p = await prepared.get(key, async () => {
        const hw = loadSpec(hwName, sets, net);
        const calibrated: string[] = [];
        const ranges = await prepareInstances(net, dir, hw, {
          calibration: () =>
            openData(calibration ? parseDataSpec(calibration) : dataSpec, net, {
              modelDir: dir,
              maxLength,
              split: 'train',
            }),
          clipformer,
          clipformerWhere: `point ${point.index}: clipformer`,
          note: (line) => {
            calibrated.push(line);
            note(line);
          },
        });
        // the cost with ClipFormer's K/V slice saving, as `xbar eval` reports it
        const costless = noCostReason(hw);
        const cost = costless
          ? null
          : modelCost(net.config, hw, clipformer ? { extra: { beta: costBeta(clipformer) } } : {});
        return { hw, instance: analogInstances(net, hw, ranges), cost, costless, calibration: calibrated };
      });
      check();
      const matmuls = await p.instance(seed);
      check();
      if (s['snr'] === true) {
        // one pass gives the metric and the SNR (the ideal network built into the same graph)
        const m = await measureSnr(net, data, matmuls, { batch, provider });
        const signal = m.blocks.reduce((a, b) => a + b.signal, 0);
        const noise = m.blocks.reduce((a, b) => a + b.noise, 0);
        metrics['snr_db'] = snrDb(signal, noise);
        for (const b of m.blocks) metrics[`snr_db.${b.block}`] = b.snrDb;
        r = m;
      } else r = await evaluate(net, data, { batch, provider, matmuls, fresh: true });
      metrics['time_s'] = p.hw.spec.timeS;
      if (p.cost) {
        const t = p.cost.totals;
        Object.assign(metrics, {
          energy_mJ: t.energyMJ,
          delay_ms: t.delayMs,
          area_mm2: t.areaMm2,
          edap: t.edap,
        });
      }
      labels['hardware'] = p.hw.spec.name;
      if (p.calibration.length) labels['calibration'] = p.calibration.join('; ');
      if (p.cost) labels['edap'] = 'mJ·ms·mm²';
      else labels['cost'] = `none: ${p.costless}`;
    }
    const ci = metricInterval95(r.metric as never, r.predictions, data.targets);
    metrics['metric'] = r.value;
    metrics['metric_low'] = ci.low;
    metrics['metric_high'] = ci.high;
    labels['metric_name'] = r.metric;
    labels['interval'] = ci.method;
    // JSON has no Infinity or NaN (a noiseless block's SNR): those are left out
    for (const [k, v] of Object.entries(metrics)) if (!Number.isFinite(v)) delete metrics[k];
    return { id: point.id, metrics, labels } satisfies Omit<PointResult, 'provenance'>;
  };
}

/** A runner on the CPU with caches of its own (one per process is plenty). */
export const runPoint: RunPoint = createPointRunner();
