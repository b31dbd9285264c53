/**
 * The PCM statistical model of aihwkit's PCMLikeNoiseModel (fitted on a 1-million-device array):
 * programming noise (its formula: the pcm kind of write-noise.ts), drift exponents and
 * accumulated 1/f read noise. Conductances in µS.
 * @see Nandakumar et al., ICECS 2019; IBM aihwkit, inference/noise/pcm.py
 */
import type { Rng } from '../../util/math.js';

/** σ_prog(ĝ) = c0 + c1·ĝ + c2·ĝ² µS at G_MAX = 25 µS, ĝ = g_T/G_MAX. */
export const PCM_PROG_FIT = Object.freeze({ c0: 0.26348, c1: 1.965, c2: -1.1731, gMaxRefUS: 25 });

/** ν ~ |N(μ_ν, σ_ν)| with μ_ν, σ_ν = clamp(a·ln ĝ + b, lo, hi). */
export const PCM_DRIFT_FIT = Object.freeze({
  mu: { a: -0.0155, b: 0.0244, lo: 0.049, hi: 0.1 },
  sigma: { a: -0.0125, b: -0.0059, lo: 0.008, hi: 0.045 },
});

/** Q_s = min(c/|ĝ|^e, max): the 1/f read-noise amplitude. */
export const PCM_READ_FIT = Object.freeze({ c: 0.0088, e: 0.65, max: 0.2 });

const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);

/** Drift exponent ν of a device programmed to g_T. */
export function pcmDriftNu(gT: number, gMaxUS: number, rng: Rng): number {
  const ln = Math.log(Math.max(gT / gMaxUS, 1e-12));
  const { mu, sigma } = PCM_DRIFT_FIT;
  const m = clamp(mu.a * ln + mu.b, mu.lo, mu.hi);
  const s = clamp(sigma.a * ln + sigma.b, sigma.lo, sigma.hi);
  return Math.abs(m + s * rng.normal());
}

/**
 * Conductance at `tS` seconds after programming: drift g·((t + t0)/t0)^−ν, then accumulated
 * 1/f read noise g + |g|·Q_s·sqrt(ln((t + t0 + t_read)/(2 t_read)))·ξ. What depends only on the
 * time and the device model is computed once: programming a layer calls the result per device.
 */
export function pcmAtTime(
  tS: number,
  o: { gMaxUS: number; t0S: number; readNoise: boolean; tReadS: number },
): (gProg: number, nu: number, rng: Rng) => number {
  const t = tS + o.t0S;
  const ratio = t / o.t0S;
  const f = PCM_READ_FIT;
  const accumulated = Math.sqrt(Math.log((t + o.tReadS) / (2 * o.tReadS)));
  return (gProg, nu, rng) => {
    let g = gProg * ratio ** -nu;
    if (o.readNoise) {
      const q = Math.min(f.c / Math.max(Math.abs(gProg / o.gMaxUS), 1e-12) ** f.e, f.max);
      g += Math.abs(g) * q * accumulated * rng.normal();
    }
    return Math.max(0, g);
  };
}
