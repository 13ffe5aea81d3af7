/**
 * The Node.js (V8) flags `redis-ha` runs with; measured on the daemon in steady state,
 * see README "Footprint":
 *
 *  - `--max-semi-space-size=1` (MiB): V8 otherwise grows the young generation to 16 MiB
 *    per semi-space while modules load and never gives it back; a daemon that allocates a
 *    few KiB per advert needs 1.
 *  - `--lite-mode`: no optimizing compiler (it implies `--jitless`: every function is
 *    interpreted, and WebAssembly is unavailable). The optimizer's code and its pages of the
 *    node binary are ~10 MiB; the daemon's CPU goes to system calls, not to JavaScript
 *    (no measurable difference at 100 ms adverts).
 *  - `--no-expose-wasm`: states what `--lite-mode` implies anyway; without it V8 prints
 *    "disabling flag --expose_wasm due to conflicting flags" on stderr at every start,
 *    `redis-ha status` included.
 *  - `--v8-pool-size=1`: one V8 worker thread instead of four (each with its own malloc
 *    arena); with no optimizing compiler it only helps the garbage collector of a small heap.
 *
 * No `--max-old-space-size`: a lower limit did not shrink the steady state, and a daemon
 * that V8 stops at a limit in the middle of a failover is worse than a few MiB.
 *
 * Everything that starts the program passes them: the shebang of `main.ts` (a
 * test checks it spells exactly these), the launcher `scripts/install.sh` writes (it
 * copies them from that shebang, and at each start leaves out, with a warning, any the
 * installed Node.js refuses: a later Node.js may drop a V8 flag) and the lab (`tools/lab/pair.ts`), so the benchmark
 * and the end-to-end tests measure and test what production runs. `--lite-mode` is not
 * allowed in `NODE_OPTIONS`, which is why they are command-line flags.
 */
export const NODE_FLAGS: readonly string[] = ['--max-semi-space-size=1', '--lite-mode', '--no-expose-wasm', '--v8-pool-size=1'];
