/**
 * The control socket over real Unix sockets in a temp directory: the wire protocol,
 * SO_PEERCRED credentials (this process, a child process, and as root a child running
 * as nobody), socket mode and group, stale and foreign sockets, bad requests, limits,
 * and the CLI client's error messages.
 */
import { spawn } from 'node:child_process';
import { chmod, lstat, mkdir, mkdtemp, readFile, rename, rm, stat, writeFile } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { pino } from 'pino';
import ts from 'typescript';
import { afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  ControlServer,
  MAX_REQUEST_BYTES,
  sendControlRequest,
  type Caller,
  type ControlHandler,
  type ControlRequest,
} from '../../src/adapters/control-socket.js';
import { groupId, loadPeerCredAddon, peerCredentials, userName } from '../../src/adapters/peer-cred.js';
import { silentLogger } from '../../src/daemon/logger.js';
import type { Logger } from '../../src/logger.js';
import { RedisHaError } from '../../src/errors.js';

const IS_ROOT = process.getuid?.() === 0;
const NOBODY_UID = 65534;
const NOGROUP_GID = 65534;
const DAEMON_GID = 1;
const CLIENT_TIMEOUT_MS = 10_000;

if (!IS_ROOT) {
  console.warn(
    '\n*** control-socket.test.ts: NOT running as root: the permission tests (a client running as nobody ' +
      'against 0660/0666 sockets and control groups) are SKIPPED. Run the suite as root to cover them. ***\n',
  );
}

const dirs: string[] = [];
const servers: ControlServer[] = [];
const rawServers: Server[] = [];
const cleanups: (() => void)[] = [];

afterEach(async () => {
  for (const fn of cleanups.splice(0)) fn();
  for (const s of servers.splice(0)) await s.stop();
  for (const s of rawServers.splice(0)) await new Promise<void>((resolve) => s.close(() => resolve()));
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});

/** A temp dir everyone may traverse (the nobody client must reach the socket and its script). */
async function tmp(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'rh-ctl-'));
  dirs.push(d);
  await chmod(d, 0o755);
  return d;
}

/** A socket path whose parent directory does not exist yet. */
async function socketPath(): Promise<string> {
  return join(await tmp(), 'run', 'redis-ha.sock');
}

/** Replies with what it was given, so tests can look at the request and the caller. */
const echo: ControlHandler = async (request, caller) => ({ ok: true, command: request.command, args: request.args, caller });

interface StartOptions {
  readonly group?: string | null;
  readonly mode?: number;
  readonly handler?: ControlHandler;
  readonly maxConnections?: number;
  readonly reservedConnections?: number;
  readonly requestTimeoutMs?: number;
  readonly warningIntervalMs?: number;
  readonly logger?: Logger;
}

async function startServer(path: string, options: StartOptions = {}): Promise<ControlServer> {
  const { group, handler, logger, ...limits } = options;
  const server = new ControlServer({ path, group: group ?? null, logger: logger ?? silentLogger(), handler: handler ?? echo, ...limits });
  await server.start();
  servers.push(server);
  return server;
}

/** Sends raw bytes and returns everything the server wrote before the connection closed. */
function rawExchange(path: string, payload: string | null, options: { end?: boolean } = {}): Promise<string> {
  return new Promise((resolve) => {
    const chunks: Buffer[] = [];
    const socket = createConnection({ path });
    socket.on('connect', () => {
      if (payload !== null) socket.write(payload);
      if (options.end) socket.end();
    });
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('error', () => undefined); // EPIPE/ECONNRESET after the reply: the reply is what counts
    socket.on('close', () => resolve(Buffer.concat(chunks).toString('utf8')));
  });
}

/** Opens a connection that sends nothing; resolves once connected. */
function idleConnection(path: string): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    socket.on('error', () => undefined);
    socket.once('connect', () => resolve(socket));
    socket.once('error', reject);
    cleanups.push(() => socket.destroy());
  });
}

/** A logger that keeps every line it is given, parsed. */
function captureLogger(): { logger: Logger; lines: Record<string, unknown>[] } {
  const lines: Record<string, unknown>[] = [];
  const logger = pino({ level: 'debug' }, { write: (line: string) => void lines.push(JSON.parse(line) as Record<string, unknown>) });
  return { logger, lines };
}

const parseLine = (text: string): Record<string, unknown> => {
  expect(text.endsWith('\n')).toBe(true);
  expect(text.trimEnd().includes('\n')).toBe(false);
  return JSON.parse(text) as Record<string, unknown>;
};

/** A stale socket file: a listener bound it, then went away without removing it. */
async function makeStaleSocket(path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true });
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(`${path}.tmp`, resolve));
  await rename(`${path}.tmp`, path);
  await new Promise<void>((resolve) => server.close(() => resolve()));
  expect((await lstat(path)).isSocket()).toBe(true);
}

async function expectRejects(promise: Promise<unknown>, code: string): Promise<RedisHaError> {
  const error = await promise.then(
    () => null,
    (e: unknown) => e,
  );
  expect(error).toBeInstanceOf(RedisHaError);
  expect((error as RedisHaError).code).toBe(code);
  return error as RedisHaError;
}

interface ChildResult {
  readonly status: number | null;
  readonly stdout: string;
  readonly stderr: string;
  readonly pid: number;
}

/** Runs a process (killed if it outlives `timeoutMs`) and collects its output. */
function runChild(
  command: string,
  args: readonly string[],
  options: { uid?: number; gid?: number; cwd?: string; timeoutMs?: number } = {},
): Promise<ChildResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: options.cwd ?? tmpdir(),
      stdio: ['ignore', 'pipe', 'pipe'],
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 30_000);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('close', (status) => {
      clearTimeout(timer);
      resolve({ status, stdout, stderr, pid: child.pid ?? -1 });
    });
  });
}

describe('ControlServer: protocol', () => {
  it('round-trips a request, creating the parent directory (0755), and removes the socket on stop', async () => {
    const path = await socketPath();
    const seen: ControlRequest[] = [];
    const server = await startServer(path, {
      handler: async (request) => {
        seen.push(request);
        return { ok: true, answer: 42, echoed: request.args };
      },
    });
    expect(((await stat(dirname(path))).mode & 0o777).toString(8)).toBe('755');
    const reply = await sendControlRequest(path, { command: 'status', args: { verbose: true, n: [1, 2] } }, CLIENT_TIMEOUT_MS);
    expect(reply).toEqual({ ok: true, answer: 42, echoed: { verbose: true, n: [1, 2] } });
    expect(seen).toEqual([{ command: 'status', args: { verbose: true, n: [1, 2] } }]);

    // A request without args gets {} (lenient), and the raw reply is exactly one JSON line.
    const raw = await rawExchange(path, '{"command":"status"}\n');
    expect(parseLine(raw)).toMatchObject({ ok: true, echoed: {} });

    await server.stop();
    await expect(lstat(path)).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it("gives the handler this process's credentials for an in-process client", async () => {
    const path = await socketPath();
    await startServer(path);
    const reply = await sendControlRequest(path, { command: 'whoami', args: {} }, CLIENT_TIMEOUT_MS);
    const caller = reply.caller as Caller;
    const uid = process.getuid?.() ?? -1;
    expect(caller.credentials).toMatchObject({ pid: process.pid, uid, gid: process.getgid?.() ?? -1, user: userName(uid) });
    expect(caller.credentials?.groups[0]).toBe(process.getgid?.());
    expect(caller.credentialError).toBeNull();
    expect(caller.authorized).toBe(true); // same uid as the daemon
    expect(caller.description).toBe(`${userName(uid)} (uid ${uid}, pid ${process.pid})`);
    if (IS_ROOT) expect(caller.credentials).toMatchObject({ uid: 0, user: 'root' });
  });

  it("gives the handler a child process's own pid", async () => {
    const path = await socketPath();
    await startServer(path);
    const script = `
      const net = require('node:net');
      const s = net.createConnection({ path: process.argv[1] });
      let data = '';
      s.on('connect', () => s.write(JSON.stringify({ command: 'whoami', args: {} }) + '\\n'));
      s.on('data', (c) => (data += c));
      s.on('close', () => process.stdout.write(JSON.stringify({ pid: process.pid, reply: JSON.parse(data) })));
    `;
    const child = await runChild(process.execPath, ['-e', script, path]);
    expect(child.stderr).toBe('');
    const out = JSON.parse(child.stdout) as { pid: number; reply: { ok: boolean; caller: Caller } };
    expect(out.pid).toBe(child.pid);
    expect(out.reply.ok).toBe(true);
    expect(out.reply.caller.credentials?.pid).toBe(child.pid);
    expect(out.reply.caller.credentials?.pid).not.toBe(process.pid);
    expect(out.reply.caller.credentials?.uid).toBe(process.getuid?.());
  });

  it('answers malformed JSON, a missing command, bad args and a non-object with an error, then serves the next request', async () => {
    const path = await socketPath();
    await startServer(path);
    const bad: readonly [string, RegExp][] = [
      ['{"command": "status", \n', /invalid JSON/],
      ['not json at all\n', /invalid JSON/],
      ['{"args": {}}\n', /no "command"/],
      ['{"command": ""}\n', /no "command"/],
      ['{"command": "status", "args": [1]}\n', /"args" must be a JSON object/],
      ['[1, 2]\n', /must be a JSON object/],
    ];
    for (const [payload, message] of bad) {
      const reply = parseLine(await rawExchange(path, payload));
      expect(reply.ok).toBe(false);
      expect(reply.error).toMatch(message);
    }
    expect(await sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS)).toMatchObject({ ok: true });
  });

  it('answers an oversize request with an error and keeps serving', async () => {
    const path = await socketPath();
    await startServer(path);
    const huge = `{"command":"status","args":{"pad":"${'x'.repeat(MAX_REQUEST_BYTES)}"}}\n`;
    const reply = parseLine(await rawExchange(path, huge));
    expect(reply).toEqual({ ok: false, error: `request larger than ${MAX_REQUEST_BYTES} bytes` });
    // Without a newline at all, too.
    expect(parseLine(await rawExchange(path, 'y'.repeat(MAX_REQUEST_BYTES + 10))).ok).toBe(false);
    // Exactly at the limit is fine (the JSON is still checked).
    const atLimit = `{"command":"status","args":{"pad":"${'z'.repeat(MAX_REQUEST_BYTES - 38)}"}}`;
    expect(Buffer.byteLength(atLimit)).toBe(MAX_REQUEST_BYTES);
    expect(parseLine(await rawExchange(path, `${atLimit}\n`)).ok).toBe(true);
    // The client refuses to send an oversize request at all.
    await expectRejects(
      sendControlRequest(path, { command: 'status', args: { pad: 'x'.repeat(MAX_REQUEST_BYTES) } }, CLIENT_TIMEOUT_MS),
      'CONTROL_BAD_REQUEST',
    );
    expect(await sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS)).toMatchObject({ ok: true });
  });

  it('turns a handler exception, or a reply without ok, into an error reply', async () => {
    const path = await socketPath();
    await startServer(path, {
      handler: async (request) => {
        if (request.command === 'boom') throw new Error('redis is on fire');
        if (request.command === 'no-ok') return { done: true };
        return { ok: true };
      },
    });
    expect(await sendControlRequest(path, { command: 'boom', args: {} }, CLIENT_TIMEOUT_MS)).toEqual({
      ok: false,
      error: 'redis is on fire',
    });
    const noOk = await sendControlRequest(path, { command: 'no-ok', args: {} }, CLIENT_TIMEOUT_MS);
    expect(noOk.ok).toBe(false);
    expect(noOk.error).toMatch(/internal error/);
    expect(await sendControlRequest(path, { command: 'fine', args: {} }, CLIENT_TIMEOUT_MS)).toEqual({ ok: true });
  });

  it('replies to a client that half-closes after a request without a newline', async () => {
    const path = await socketPath();
    await startServer(path);
    const reply = parseLine(await rawExchange(path, '{"command":"status","args":{}}', { end: true }));
    expect(reply).toMatchObject({ ok: true, command: 'status' });
    // Half-closing without sending anything just closes.
    expect(await rawExchange(path, null, { end: true })).toBe('');
  });

  it('times out a client that sends no request, but never one whose request is in', async () => {
    const path = await socketPath();
    await startServer(path, {
      requestTimeoutMs: 200,
      handler: async () => {
        await new Promise((resolve) => setTimeout(resolve, 800)); // four idle timeouts
        return { ok: true, slow: true };
      },
    });
    const idle = parseLine(await rawExchange(path, '{"command":'));
    expect(idle).toEqual({ ok: false, error: 'no complete request within 200 ms' });
    expect(await sendControlRequest(path, { command: 'switchover', args: {} }, CLIENT_TIMEOUT_MS)).toEqual({ ok: true, slow: true });
  });

  it('cuts a client that trickles bytes at the total deadline, however often it sends', async () => {
    const path = await socketPath();
    await startServer(path, { requestTimeoutMs: 400 });
    const started = performance.now();
    const reply = await new Promise<string>((resolve) => {
      const chunks: Buffer[] = [];
      const socket = createConnection({ path });
      // One byte every 50 ms: an idle timeout of 400 ms would never fire.
      const trickle = setInterval(() => socket.write('x'), 50);
      socket.on('data', (chunk: Buffer) => chunks.push(chunk));
      socket.on('error', () => undefined);
      socket.on('close', () => {
        clearInterval(trickle);
        resolve(Buffer.concat(chunks).toString('utf8'));
      });
      cleanups.push(() => socket.destroy());
    });
    const lifetimeMs = performance.now() - started;
    expect(parseLine(reply)).toEqual({ ok: false, error: 'no complete request within 400 ms' });
    expect(lifetimeMs).toBeGreaterThanOrEqual(350);
    expect(lifetimeMs).toBeLessThan(1_500);
  });

  it('logs turned-away connections at most once per interval, then one line with the count held back', async () => {
    const path = await socketPath();
    const { logger, lines } = captureLogger();
    await startServer(path, { maxConnections: 1, requestTimeoutMs: 30_000, warningIntervalMs: 300, logger });
    await idleConnection(path);
    for (let i = 0; i < 5; i++) expect(parseLine(await rawExchange(path, '{"command":"status"}\n')).ok).toBe(false);
    const turnedAway = () => lines.filter((l) => l.msg === 'control connection turned away: too many connections');
    expect(turnedAway()).toHaveLength(1);
    expect(turnedAway()[0]).toMatchObject({ level: 40, limit: 1 });
    expect(turnedAway()[0]?.suppressed).toBeUndefined();
    await new Promise((resolve) => setTimeout(resolve, 450));
    expect(turnedAway()).toHaveLength(2);
    expect(turnedAway()[1]).toMatchObject({ suppressed: 4, intervalMs: 300 });
    // A quiet interval ends the throttling: nothing more is logged, and the next one is logged at once.
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(turnedAway()).toHaveLength(2);
    await rawExchange(path, '{"command":"status"}\n');
    expect(turnedAway()).toHaveLength(3);
  });

  it('turns away connections beyond maxConnections with an error reply', async () => {
    const path = await socketPath();
    await startServer(path, { maxConnections: 2, requestTimeoutMs: 30_000 });
    const first = await idleConnection(path);
    const second = await idleConnection(path);
    const third = parseLine(await rawExchange(path, '{"command":"status"}\n'));
    expect(third).toEqual({ ok: false, error: 'too many control connections (limit 2); try again later' });
    first.destroy();
    second.destroy();
    // The slots free up once the server has seen the two connections close.
    let reply: Record<string, unknown> = {};
    for (let attempt = 0; attempt < 50; attempt++) {
      reply = await sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS);
      if (reply.ok === true) break;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(reply).toMatchObject({ ok: true });
  });

  it('stop() drops connections waiting for a reply', async () => {
    const path = await socketPath();
    let entered!: () => void;
    const handlerEntered = new Promise<void>((resolve) => (entered = resolve));
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    cleanups.push(() => release());
    const server = await startServer(path, {
      handler: async () => {
        entered();
        await released;
        return { ok: true };
      },
    });
    // Observed from the start: the rejection may land while stop() is still running.
    const pending = expectRejects(sendControlRequest(path, { command: 'switchover', args: {} }, CLIENT_TIMEOUT_MS), 'CONTROL_CONNECTION_LOST');
    await handlerEntered;
    await server.stop();
    const error = await pending;
    expect(error.message).toContain(path);
    await expect(lstat(path)).rejects.toMatchObject({ code: 'ENOENT' });
    release(); // the handler's late reply goes nowhere, quietly
  });
});

describe('ControlServer: the socket file', () => {
  // chown to a group needs root (or membership of it).
  it.skipIf(!IS_ROOT)('applies mode 0660 and the control group (root only)', async () => {
    const path = await socketPath();
    await startServer(path, { group: 'daemon' });
    const stats = await lstat(path);
    expect(stats.isSocket()).toBe(true);
    expect((stats.mode & 0o777).toString(8)).toBe('660');
    expect(stats.gid).toBe(DAEMON_GID);
    expect(groupId('daemon')).toBe(DAEMON_GID);
  });

  it('applies a custom mode', async () => {
    const path = await socketPath();
    await startServer(path, { mode: 0o600 });
    expect(((await lstat(path)).mode & 0o777).toString(8)).toBe('600');
  });

  it('refuses an unknown control group before creating anything', async () => {
    const path = await socketPath();
    const server = new ControlServer({ path, group: 'no-such-group-rh', logger: silentLogger(), handler: echo });
    const error = await expectRejects(server.start(), 'CONTROL_GROUP_UNKNOWN');
    expect(error.message).toContain('no-such-group-rh');
    expect(error.message).toContain('control.group');
    await expect(lstat(dirname(path))).rejects.toMatchObject({ code: 'ENOENT' });
  });

  it('replaces a stale socket', async () => {
    const path = await socketPath();
    await makeStaleSocket(path);
    await startServer(path);
    expect(await sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS)).toMatchObject({ ok: true });
  });

  it('refuses to start a second server on a live socket, and leaves the first one alone', async () => {
    const path = await socketPath();
    await startServer(path);
    const second = new ControlServer({ path, group: null, logger: silentLogger(), handler: echo });
    const error = await expectRejects(second.start(), 'CONTROL_SOCKET_IN_USE');
    expect(error.message).toBe(`another redis-ha daemon is listening on ${path}`);
    await second.stop(); // a no-op: it never listened, so it must not remove the first one's socket
    expect(await sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS)).toMatchObject({ ok: true });
  });

  it('refuses a path that is not a socket, leaving the file untouched', async () => {
    const path = await socketPath();
    await mkdir(dirname(path), { recursive: true });
    await writeFile(path, 'precious\n');
    const server = new ControlServer({ path, group: null, logger: silentLogger(), handler: echo });
    const error = await expectRejects(server.start(), 'CONTROL_SOCKET_PATH');
    expect(error.message).toContain(path);
    expect(await readFile(path, 'utf8')).toBe('precious\n');
  });
});

describe('sendControlRequest: error messages', () => {
  it('ENOENT: no daemon listening', async () => {
    const path = await socketPath();
    const error = await expectRejects(sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS), 'CONTROL_UNREACHABLE');
    expect(error.message).toBe(
      `no redis-ha daemon is listening on ${path} (is the service running? is control.socket the same in both configs?)`,
    );
  });

  it('ECONNREFUSED: stale socket', async () => {
    const path = await socketPath();
    await makeStaleSocket(path);
    const error = await expectRejects(sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS), 'CONTROL_UNREACHABLE');
    expect(error.message).toBe(`stale socket ${path}: the daemon is not running`);
  });

  it('times out when the daemon does not answer', async () => {
    const path = await socketPath();
    let release!: () => void;
    const released = new Promise<void>((resolve) => (release = resolve));
    cleanups.push(() => release());
    await startServer(path, {
      handler: async () => {
        await released;
        return { ok: true };
      },
    });
    const error = await expectRejects(sendControlRequest(path, { command: 'status', args: {} }, 300), 'CONTROL_TIMEOUT');
    expect(error.message).toBe('no reply from the daemon within 300 ms');
  });

  it('says so when the reply is malformed or missing', async () => {
    const path = await socketPath();
    await mkdir(dirname(path), { recursive: true });
    const replies = ['this is not json\n', '[1,2]\n', '{"result":1}\n', ''];
    let next = 0;
    const raw = createServer((socket) => {
      socket.on('error', () => undefined);
      socket.once('data', () => socket.end(replies[next++] ?? ''));
    });
    rawServers.push(raw);
    await new Promise<void>((resolve) => raw.listen(path, resolve));
    const request = { command: 'status', args: {} };
    const notJson = await expectRejects(sendControlRequest(path, request, CLIENT_TIMEOUT_MS), 'CONTROL_BAD_REPLY');
    expect(notJson.message).toMatch(/^malformed reply from the daemon on .*: not JSON: "this is not json"$/);
    expect((await expectRejects(sendControlRequest(path, request, CLIENT_TIMEOUT_MS), 'CONTROL_BAD_REPLY')).message).toMatch(
      /not a JSON object/,
    );
    expect((await expectRejects(sendControlRequest(path, request, CLIENT_TIMEOUT_MS), 'CONTROL_BAD_REPLY')).message).toMatch(
      /no boolean "ok"/,
    );
    expect((await expectRejects(sendControlRequest(path, request, CLIENT_TIMEOUT_MS), 'CONTROL_CONNECTION_LOST')).message).toMatch(
      /closed the connection without replying/,
    );
  });
});

describe('peer-cred helpers', () => {
  it('looks up groups and users in /etc/group and /etc/passwd', () => {
    expect(groupId('root')).toBe(0);
    expect(groupId('nogroup')).toBe(NOGROUP_GID);
    expect(groupId('no-such-group-rh')).toBeNull();
    expect(userName(0)).toBe('root');
    expect(userName(NOBODY_UID)).toBe('nobody');
    expect(userName(4_242_424)).toBe('uid 4242424');
  });

  it('explains how to build the addon when it is missing', () => {
    try {
      loadPeerCredAddon('/nonexistent/peercred.node');
      expect.unreachable();
    } catch (error) {
      expect(error).toBeInstanceOf(RedisHaError);
      expect((error as RedisHaError).code).toBe('PEER_CRED_UNAVAILABLE');
      expect((error as Error).message).toContain('npm run build:native');
    }
  });

  it('refuses a socket without a file descriptor', async () => {
    const { Socket: NetSocket } = await import('node:net');
    const error = await expectRejects(peerCredentials(new NetSocket()), 'PEER_CRED_UNAVAILABLE');
    expect(error.message).toContain('npm run build:native');
  });
});

describe.skipIf(!IS_ROOT)('ControlServer: permissions (root only: clients run as nobody)', () => {
  let clientScript = '';
  let tricklerScript = '';

  // The nobody client runs the real sendControlRequest: compile the three modules it needs
  // into the (world-readable) temp dir, since plain node cannot load TypeScript.
  beforeAll(async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rh-ctl-client-'));
    await chmod(dir, 0o755);
    const srcRoot = new URL('../../src/', import.meta.url);
    for (const file of ['adapters/control-socket.ts', 'adapters/peer-cred.ts', 'errors.ts']) {
      const source = await readFile(new URL(file, srcRoot), 'utf8');
      const { outputText } = ts.transpileModule(source, {
        compilerOptions: { module: ts.ModuleKind.ES2022, target: ts.ScriptTarget.ES2022 },
      });
      const out = join(dir, 'lib', file.replace(/\.ts$/, '.js'));
      await mkdir(dirname(out), { recursive: true, mode: 0o755 });
      await writeFile(out, outputText, { mode: 0o644 });
    }
    await writeFile(join(dir, 'lib', 'package.json'), '{"type":"module"}\n', { mode: 0o644 });
    clientScript = join(dir, 'client.mjs');
    await writeFile(
      clientScript,
      `import { sendControlRequest } from './lib/adapters/control-socket.js';
       try {
         const reply = await sendControlRequest(process.argv[2], { command: 'whoami', args: {} }, ${CLIENT_TIMEOUT_MS});
         console.log(JSON.stringify({ pid: process.pid, reply }));
       } catch (e) {
         console.log(JSON.stringify({ pid: process.pid, error: { code: e.code, message: e.message } }));
       }
      `,
      { mode: 0o644 },
    );
    // Keeps `count` connections open, each sending one byte every `trickleMs` and never a
    // newline, reconnecting (after 100 ms) whenever the server cuts one, until `durationMs`.
    // Prints "ready" once all are connected, then one JSON line per connection at the end.
    tricklerScript = join(dir, 'trickler.mjs');
    await writeFile(
      tricklerScript,
      `import net from 'node:net';
       const [path, count, trickleMs, durationMs] = [process.argv[2], ...process.argv.slice(3).map(Number)];
       const started = performance.now();
       const results = [];
       const open = new Set();
       let connected = 0;
       const connect = () => {
         const opened = performance.now();
         const socket = net.createConnection({ path });
         const chunks = [];
         let timer;
         open.add(socket);
         socket.on('connect', () => {
           if (++connected === count) console.log('ready');
           timer = setInterval(() => socket.write('x'), trickleMs);
         });
         socket.on('data', (c) => chunks.push(c));
         socket.on('error', () => undefined);
         socket.on('close', () => {
           clearInterval(timer);
           open.delete(socket);
           const closed = performance.now();
           results.push({ lifetimeMs: Math.round(closed - opened), cut: !stopping, reply: Buffer.concat(chunks).toString('utf8') });
           if (!stopping) setTimeout(connect, 100);
         });
       };
       let stopping = false;
       for (let i = 0; i < count; i++) connect();
       setTimeout(() => {
         stopping = true;
         for (const socket of open) socket.destroy();
         setTimeout(() => { console.log(JSON.stringify(results)); process.exit(0); }, 100);
       }, durationMs);
      `,
      { mode: 0o644 },
    );
    return () => rm(dir, { recursive: true, force: true });
  });

  interface TrickledConnection {
    readonly lifetimeMs: number;
    /** True when the server closed it, false when the trickler stopped. */
    readonly cut: boolean;
    readonly reply: string;
  }

  /** Runs the trickler as nobody; resolves once its connections are open, `done` once it exits. */
  async function trickleAsNobody(
    path: string,
    count: number,
    trickleMs: number,
    durationMs: number,
  ): Promise<{ done: Promise<TrickledConnection[]> }> {
    const child = spawn(process.execPath, [tricklerScript, path, String(count), String(trickleMs), String(durationMs)], {
      uid: NOBODY_UID,
      gid: NOGROUP_GID,
      cwd: dirname(tricklerScript),
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    const killer = setTimeout(() => child.kill('SIGKILL'), durationMs + 20_000);
    cleanups.push(() => child.kill('SIGKILL'));
    let stdout = '';
    let stderr = '';
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const ready = new Promise<void>((resolve, reject) => {
      child.stdout.on('data', (c: Buffer) => {
        stdout += c.toString();
        if (stdout.startsWith('ready\n')) resolve();
      });
      child.once('exit', () => reject(new Error(`trickler exited early: ${stderr}${stdout}`)));
    });
    const done = new Promise<TrickledConnection[]>((resolve, reject) => {
      child.once('close', (status) => {
        clearTimeout(killer);
        if (status !== 0) reject(new Error(`trickler exited with ${status}: ${stderr}`));
        else resolve(JSON.parse(stdout.slice('ready\n'.length)) as TrickledConnection[]);
      });
    });
    await ready;
    return { done };
  }

  it('a nobody trickling one byte every 0.5 s on 16 connections neither keeps status from root nor holds a slot past the deadline', async () => {
    const path = await socketPath();
    const requestTimeoutMs = 2_000;
    // 0666: nobody may connect (and run status) but is not authorized.
    await startServer(path, { mode: 0o666, requestTimeoutMs });
    const trickler = await trickleAsNobody(path, 16, 500, 5_000);
    // While the trickler holds (or retakes) every slot it can, root asks for status again and again.
    for (let i = 0; i < 8; i++) {
      const reply = await sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS);
      expect(reply).toMatchObject({ ok: true, command: 'status' });
      expect((reply.caller as Caller).credentials?.uid).toBe(0);
      await new Promise((resolve) => setTimeout(resolve, 500));
    }
    const connections = await trickler.done;
    // A reply can be lost to the trickler's own next byte racing the close (EPIPE): those are only timed.
    const replies = connections.filter((c) => c.cut && c.reply !== '').map((c) => parseLine(c.reply).error);
    const deadline = `no complete request within ${requestTimeoutMs} ms`;
    const unprivilegedFull =
      "too many control connections from unprivileged callers (limit 12; 4 more are kept for root, the daemon's user and control.group); try again later";
    // Every connection the server cut was either cut at the deadline or turned away at once for want of an unprivileged slot.
    expect(new Set(replies)).toEqual(new Set([deadline, unprivilegedFull]));
    const timedOut = connections.filter((c) => c.cut && c.reply.includes(deadline));
    expect(timedOut.length).toBeGreaterThanOrEqual(12);
    for (const c of timedOut) {
      expect(c.lifetimeMs).toBeGreaterThanOrEqual(requestTimeoutMs - 50);
      expect(c.lifetimeMs).toBeLessThan(requestTimeoutMs + 1_000);
    }
    // Nothing the trickler opened outlived the deadline by more than the slack.
    for (const c of connections) expect(c.lifetimeMs).toBeLessThan(requestTimeoutMs + 1_000);
  });

  it('an unprivileged caller cannot take the reserved slots; root still can', async () => {
    const path = await socketPath();
    await startServer(path, { mode: 0o666, maxConnections: 4, reservedConnections: 2, requestTimeoutMs: 30_000 });
    // nobody opens four connections that send nothing: two get a slot, two are turned away.
    const trickler = await trickleAsNobody(path, 4, 60_000, 1_500);
    // Root takes both reserved slots at once, and is served in each.
    const [a, b] = await Promise.all([
      sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS),
      sendControlRequest(path, { command: 'status', args: {} }, CLIENT_TIMEOUT_MS),
    ]);
    expect([a.ok, b.ok]).toEqual([true, true]);
    const connections = await trickler.done;
    const turnedAway = connections.filter((c) => c.cut && c.reply.includes('from unprivileged callers (limit 2; 2 more'));
    expect(turnedAway.length).toBeGreaterThanOrEqual(2);
    // The two that got a slot held it until the trickler stopped.
    expect(connections.filter((c) => !c.cut)).toHaveLength(2);
  });

  interface ClientOutcome {
    readonly pid: number;
    readonly reply?: { ok: boolean; caller: Caller };
    readonly error?: { code: string; message: string };
  }

  async function asNobody(path: string, extraGroups: readonly number[] = []): Promise<ClientOutcome> {
    const child =
      extraGroups.length === 0
        ? await runChild(process.execPath, [clientScript, path], { uid: NOBODY_UID, gid: NOGROUP_GID, cwd: dirname(clientScript) })
        : await runChild(
            'setpriv',
            [
              `--reuid=${NOBODY_UID}`,
              `--regid=${NOGROUP_GID}`,
              `--groups=${extraGroups.join(',')}`,
              process.execPath,
              clientScript,
              path,
            ],
            { cwd: dirname(clientScript) },
          );
    expect(child.stderr).toBe('');
    expect(child.status).toBe(0);
    return JSON.parse(child.stdout) as ClientOutcome;
  }

  it('nobody cannot connect to a 0660 root:root socket, and gets the CLI hint', async () => {
    const path = await socketPath();
    await startServer(path);
    const stats = await lstat(path);
    expect([stats.uid, stats.gid, (stats.mode & 0o777).toString(8)]).toEqual([0, 0, '660']);
    const outcome = await asNobody(path);
    expect(outcome.error).toEqual({
      code: 'CONTROL_PERMISSION_DENIED',
      message: `permission denied on ${path}: run as root or as a member of the socket's group`,
    });
  });

  it("nobody connects and is authorized when the socket's group is its primary group (nogroup)", async () => {
    const path = await socketPath();
    await startServer(path, { group: 'nogroup' });
    expect((await lstat(path)).gid).toBe(NOGROUP_GID);
    const outcome = await asNobody(path);
    const caller = outcome.reply?.caller;
    expect(caller?.authorized).toBe(true);
    expect(caller?.credentials).toEqual({ pid: outcome.pid, uid: NOBODY_UID, gid: NOGROUP_GID, user: 'nobody', groups: [NOGROUP_GID] });
    expect(caller?.description).toBe(`nobody (uid ${NOBODY_UID}, pid ${outcome.pid})`);
  });

  it('nobody is authorized through a supplementary group read from /proc', async () => {
    const path = await socketPath();
    await startServer(path, { group: 'daemon' });
    const outcome = await asNobody(path, [DAEMON_GID]);
    const caller = outcome.reply?.caller;
    expect(caller?.credentials).toMatchObject({ uid: NOBODY_UID, gid: NOGROUP_GID, groups: [NOGROUP_GID, DAEMON_GID] });
    expect(caller?.authorized).toBe(true);
  });

  it('nobody connects to a 0666 root-group socket but is not authorized', async () => {
    const path = await socketPath();
    await startServer(path, { mode: 0o666 });
    const outcome = await asNobody(path);
    const caller = outcome.reply?.caller;
    expect(outcome.reply?.ok).toBe(true);
    expect(caller?.authorized).toBe(false);
    expect(caller?.credentials?.uid).toBe(NOBODY_UID);
    expect(caller?.credentials?.user).toBe('nobody');
    expect(caller?.credentials?.pid).toBe(outcome.pid);
  });
});
