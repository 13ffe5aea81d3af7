/**
 * The Node.js (V8) flags `redis-ha` runs with; measured, see README "Footprint".
 *
 * Everything that starts the program passes them: the shebang of `main.ts` (a
 * test checks it spells exactly these), the launcher `scripts/install.sh` writes (it
 * copies them from that shebang) and the lab (`tools/lab/pair.ts`), so the benchmark
 * and the end-to-end tests measure and test what production runs.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1'];
