/**
 * Property tests for the control socket's request parser: anyone allowed to open the
 * socket can send it anything, so whatever arrives the parser must return a request or
 * an error without throwing, and the server must answer each connection with one JSON
 * reply line (an error for a bad request) and keep serving.
 */
import fc from 'fast-check';
import { chmod, mkdtemp, rm } from 'node:fs/promises';
import { createConnection } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ControlServer, MAX_REQUEST_BYTES, parseRequest, sendControlRequest, type ControlHandler } from '../../src/adapters/control-socket.js';
import { silentLogger } from '../../src/daemon/logger.js';

const PURE_RUNS = 5_000;
const SOCKET_RUNS = 300;
const CLIENT_TIMEOUT_MS = 10_000;

/** Nesting deeper than any stack: `[[[...]]]` or `{"a":{"a":...}}` as the args. */
const deepArgs = fc.integer({ min: 1, max: 20_000 }).chain((depth) =>
  fc.constantFrom(
    `{"command":"switchover","args":${'{"a":'.repeat(depth)}1${'}'.repeat(depth)}}`,
    `{"command":"status","args":{"x":${'['.repeat(depth)}${']'.repeat(depth)}}}`,
    `{"command":"status","args":${'['.repeat(depth)}${']'.repeat(depth)}}`,
  ),
);

/** A request-shaped object whose fields are anything JSON can hold. */
const requestLike = fc
  .record(
    { command: fc.oneof(fc.string(), fc.jsonValue()), args: fc.oneof(fc.dictionary(fc.string(), fc.jsonValue()), fc.jsonValue()) },
    { requiredKeys: [] },
  )
  .map((value) => JSON.stringify(value));

/** Text a client could send: random bytes, JSON, near-requests, deep nesting, odd keys. */
const lineText = fc.oneof(
  fc.uint8Array({ maxLength: 512 }).map((b) => Buffer.from(b).toString('utf8')),
  fc.string({ unit: 'binary', maxLength: 256 }),
  fc.json(),
  requestLike,
  deepArgs,
  fc.constantFrom(
    '{"command":"status","args":{"__proto__":{"polluted":1}}}',
    '{"__proto__":{"command":"status"}}',
    '{"command":"status","command":"switchover"}',
    '{"command":"\\u0000"}',
    '{"command":"status","args":null}',
    '1e999',
    '"\\ud800"',
  ),
);

describe('parseRequest', () => {
  it('never throws, and returns either a well-formed request or an error message', () => {
    fc.assert(
      fc.property(lineText, (line) => {
        const parsed = parseRequest(line);
        if ('error' in parsed) {
          expect(typeof parsed.error).toBe('string');
          expect(parsed.error.length).toBeGreaterThan(0);
          return;
        }
        const { command, args } = parsed.request;
        expect(typeof command).toBe('string');
        expect(command).not.toBe('');
        expect(typeof args === 'object' && args !== null && !Array.isArray(args)).toBe(true);
      }),
      { numRuns: PURE_RUNS },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('accepts exactly the objects with a non-empty string command and object (or absent) args', () => {
    fc.assert(
      fc.property(fc.jsonValue(), fc.jsonValue(), fc.boolean(), (command, args, withArgs) => {
        const line = JSON.stringify(withArgs ? { command, args } : { command });
        const valid =
          typeof command === 'string' && command !== '' && (!withArgs || (typeof args === 'object' && args !== null && !Array.isArray(args)));
        expect('request' in parseRequest(line)).toBe(valid);
      }),
      { numRuns: PURE_RUNS },
    );
  });
});

describe('ControlServer under random requests', () => {
  let dir = '';
  let path = '';
  let server: ControlServer;
  /** Echoes the args back, so replies that cannot be encoded (deep nesting) are exercised too. */
  const handler: ControlHandler = async (request) => ({ ok: true, command: request.command, args: request.args });

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'rh-ctl-fuzz-'));
    await chmod(dir, 0o755);
    path = join(dir, 'control.sock');
    server = new ControlServer({ path, group: null, logger: silentLogger(), handler, requestTimeoutMs: 2_000 });
    await server.start();
  });

  afterAll(async () => {
    await server.stop();
    await rm(dir, { recursive: true, force: true });
  });

  /** Sends the bytes (then half-closes) and returns what came back before the close. */
  function exchange(payload: Buffer): Promise<string> {
    return new Promise((resolve) => {
      const chunks: Buffer[] = [];
      const socket = createConnection({ path });
      socket.on('connect', () => socket.end(payload));
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
    });
  }

  const payload = fc.oneof(
    lineText.map((text) => Buffer.from(`${text}\n`, 'utf8')),
    lineText.map((text) => Buffer.from(text, 'utf8')), // no newline: the half-close ends the request
    fc.uint8Array({ minLength: 1, maxLength: 2_048 }).map((b) => Buffer.from(b)),
  );

  it('answers every connection with one JSON reply line carrying a boolean ok, and keeps serving', async () => {
    await fc.assert(
      fc.asyncProperty(payload, async (bytes) => {
        const reply = await exchange(bytes);
        const firstNewline = bytes.indexOf(0x0a);
        const line = (firstNewline === -1 ? bytes : bytes.subarray(0, firstNewline)).toString('utf8');
        if (line.length === 0 && firstNewline === -1) {
          expect(reply).toBe(''); // nothing sent but the half-close: the connection just closes
          return;
        }
        expect(reply.endsWith('\n')).toBe(true);
        const parsed = JSON.parse(reply) as Record<string, unknown>;
        expect(typeof parsed.ok).toBe('boolean');
        const request = Buffer.byteLength(line) > MAX_REQUEST_BYTES ? { error: 'too large' } : parseRequest(line);
        if ('error' in request) {
          expect(parsed.ok).toBe(false);
          expect(typeof parsed.error).toBe('string');
        }
      }),
      { numRuns: SOCKET_RUNS },
    );
    expect(await sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS)).toMatchObject({ ok: true, command: 'status' });
  });
});
