/**
 * Which histories a property draws. A suite draws the same ones on every run (its fixed
 * seed): a test that found a new bug at random one day in ten would be a flaky test, not
 * a finding. Explore new histories with SIM_SEED=random (fast-check prints the seed and
 * path of a failure); replay one with SIM_SEED=<seed> SIM_PATH=<path>.
 */

/** fast-check's seed settings for a suite whose fixed seed is `fixedSeed`. */
export function replaySettings(fixedSeed: number): { seed?: number; path?: string | undefined; endOnFailure?: boolean } {
  const seedEnv = process.env['SIM_SEED'];
  if (seedEnv === 'random') return {};
  if (seedEnv === undefined) return { seed: fixedSeed };
  return { seed: Number(seedEnv), path: process.env['SIM_PATH'], endOnFailure: true };
}
