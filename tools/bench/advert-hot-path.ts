/**
 * Micro-benchmark of the advert hot path (issue 12 item 2): encode + sign, and verify +
 * decode, of one advert, in operations per second and bytes allocated per advert. Not
 * part of the product; run after `npm run build:tools`:
 *
 *   node --expose-gc --max-semi-space-size=256 dist-tools/tools/bench/advert-hot-path.js
 *
 * Allocation is measured as the growth of V8's heap plus the external (ArrayBuffer)
 * memory over a run with no garbage collection in it: the young generation is made
 * large enough (`--max-semi-space-size`) that none is needed, and a run that saw one
 * anyway is reported as such (its bytes are then a lower bound). Also compares the HMAC
 * constructions node:crypto offers, to show what one MAC costs.
 */
import { createHash, createHmac, createSecretKey } from 'node:crypto';
import { PerformanceObserver } from 'node:perf_hooks';
import { AdvertEncoder, decodeAdvert, encodeAdvert, type AdvertEnvelope } from '../../src/proto/advert.js';

const KEY = { id: 1, secret: Buffer.from('0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef', 'utf8') };
const ENVELOPE: AdvertEnvelope = {
  groupId: 51,
  bootTimeMs: 1_760_000_000_000,
  seq: 1,
  echoBootTimeMs: 1_760_000_000_123,
  body: {
    nodeName: 'redis-a',
    state: 'MASTER',
    priority: 100,
    advertIntervalMs: 20,
    epoch: 7,
    maintenanceGen: 0,
    flags: { fault: false, resigning: false, maintenance: false, switchingOver: false, holdsVip: true },
    redis: { role: 'master', replId: 'a'.repeat(40), replId2: '', offset: 123_456_789, secondOffset: -1 },
  },
};
const RUNS = Number(process.env['ADVERT_BENCH_RUNS'] ?? 200_000);
const WARMUP = 20_000;

type Gc = () => void;
const gc = (globalThis as { gc?: Gc }).gc;

let gcCount = 0;
new PerformanceObserver((list) => {
  gcCount += list.getEntries().length;
}).observe({ entryTypes: ['gc'] });

/** Heap used plus external memory (Buffers' backing stores live outside the heap). */
function allocatedNow(): number {
  const m = process.memoryUsage();
  return m.heapUsed + m.external;
}

interface Result {
  readonly name: string;
  readonly opsPerSec: number;
  readonly bytesPerOp: number;
  readonly gcDuring: number;
}

/** Ops per chunk of the allocation measure: small enough to fit between two collections. */
const CHUNK = 1_000;
/** Chunks tried; those that saw a collection are discarded. */
const CHUNKS = 50;

/**
 * Runs `op` RUNS times after a warm-up for ops/s; bytes per op is the median over chunks of
 * CHUNK runs that saw no garbage collection (external memory makes V8 collect early, so a
 * long run always sees some).
 */
async function measure(name: string, op: (i: number) => unknown): Promise<Result> {
  let sink: unknown;
  for (let i = 0; i < WARMUP; i++) sink = op(i);
  const start = process.hrtime.bigint();
  for (let i = 0; i < RUNS; i++) sink = op(i);
  const ns = Number(process.hrtime.bigint() - start);
  const perChunk: number[] = [];
  let discarded = 0;
  for (let c = 0; c < CHUNKS; c++) {
    gc?.();
    // The observer reports from the event loop: let it report that collection first.
    await new Promise((resolve) => setTimeout(resolve, 5));
    const gcBefore = gcCount;
    const before = allocatedNow();
    for (let i = 0; i < CHUNK; i++) sink = op(i);
    const after = allocatedNow();
    await new Promise((resolve) => setTimeout(resolve, 5));
    if (gcCount !== gcBefore) discarded++;
    else perChunk.push((after - before) / CHUNK);
  }
  if (sink === Symbol.for('never')) console.log(sink);
  perChunk.sort((a, b) => a - b);
  const median = perChunk[Math.floor(perChunk.length / 2)] ?? Number.NaN;
  return { name, opsPerSec: Math.round((RUNS * 1e9) / ns), bytesPerOp: Math.round(median), gcDuring: discarded };
}

async function main(): Promise<void> {
  if (gc === undefined) throw new Error('run with node --expose-gc --max-semi-space-size=256');
  const encoder = new AdvertEncoder();
  const packet = encodeAdvert(ENVELOPE, KEY);
  const keyObject = createSecretKey(KEY.secret);
  const signed = packet.subarray(0, packet.length - 32);
  const block = 64;
  const padded = Buffer.alloc(block);
  KEY.secret.copy(padded);
  const ipad = Buffer.from(padded.map((b) => b ^ 0x36));
  const opad = Buffer.from(padded.map((b) => b ^ 0x5c));
  const inner = createHash('sha256').update(ipad);
  const outer = createHash('sha256').update(opad);

  // One envelope, its sequence number changed in place: the sender's own object is not what is measured.
  const envelope: { -readonly [K in keyof AdvertEnvelope]: AdvertEnvelope[K] } = { ...ENVELOPE };
  const next = (i: number): AdvertEnvelope => {
    envelope.seq = i + 1;
    return envelope;
  };
  const results: Result[] = [];
  results.push(await measure('encodeAdvert (a new buffer per advert)', (i) => encodeAdvert(next(i), KEY)));
  results.push(
    await measure('AdvertEncoder.encode + release (one reused buffer)', (i) => {
      const buf = encoder.encode(next(i), KEY);
      encoder.release(buf);
      return buf;
    }),
  );
  results.push(await measure('decodeAdvert (verify + decode)', () => decodeAdvert(packet, [KEY], 51)));
  results.push(await measure('HMAC: createHmac(Buffer secret)', () => createHmac('sha256', KEY.secret).update(signed).digest()));
  results.push(await measure('HMAC: createHmac(KeyObject)', () => createHmac('sha256', keyObject).update(signed).digest()));
  results.push(
    await measure('HMAC: ipad/opad hashes copied', () => outer.copy().update(inner.copy().update(signed).digest()).digest()),
  );

  console.log(`advert of ${packet.length} bytes, ${RUNS} runs each (node ${process.version})`);
  for (const r of results) {
    const note = r.gcDuring > 0 ? ` (${r.gcDuring} of ${CHUNKS} chunks discarded for a collection)` : '';
    console.log(`${r.name.padEnd(52)} ${String(r.opsPerSec).padStart(9)} ops/s ${String(r.bytesPerOp).padStart(6)} B/op${note}`);
  }
}

await main();
