/**
 * The peer credentials of a control-socket client (`src/adapters/peer-cred.ts` and the
 * addon in `native/peercred/`): a client running as nobody with a supplementary group
 * gets that group from SO_PEERGROUPS, recorded at connect(), so it still counts after
 * the client has exited (when /proc/<pid>/status, the old source, is gone). Needs root,
 * to start the client as nobody with a chosen group.
 */
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer, type Server, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadPeerCredAddon, peerCredentials } from '../../src/adapters/peer-cred.js';

/** nobody / nogroup on Debian. */
const NOBODY = 65534;
/** A supplementary group no account needs to have: the kernel takes any number. */
const EXTRA_GROUP = 4242;

const isRoot = process.getuid?.() === 0;

/** The fd behind a connected socket, as `peer-cred.ts` reads it. */
function fdOf(socket: Socket): number {
  return (socket as unknown as { _handle: { fd: number } })._handle.fd;
}

/**
 * Starts a client that takes `groups`, then uid and gid nobody, connects to `path`,
 * writes a byte and exits; resolves with the server's end of the connection once the
 * client has exited.
 */
function connectAsNobody(server: Server, path: string, groups: readonly number[]): Promise<Socket> {
  const accepted = new Promise<Socket>((resolve) => server.once('connection', resolve));
  const script = [
    `process.setgroups(${JSON.stringify(groups)});`,
    `process.setgid(${NOBODY});`,
    `process.setuid(${NOBODY});`,
    // Exits once its byte is written: the server's end stays open (half-open), so no close comes.
    `const s = require('node:net').connect(${JSON.stringify(path)}, () => s.end('x', () => process.exit(0)));`,
    's.on("error", (e) => { console.error(e.message); process.exit(1); });',
  ].join('\n');
  const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'ignore', 'inherit'], cwd: '/' });
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  return Promise.all([accepted, exited]).then(([socket, code]) => {
    expect(code).toBe(0);
    return socket;
  });
}

describe.skipIf(!isRoot)('peer credentials of a client running as nobody', () => {
  let dir = '';
  let path = '';
  let server: Server;
  const sockets: Socket[] = [];

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'redis-ha-peercred-'));
    chmodSync(dir, 0o755);
    path = join(dir, 'control.sock');
    // Half-open: the server's end stays usable after the client has gone.
    server = createServer({ allowHalfOpen: true }, (socket) => {
      sockets.push(socket);
      socket.resume();
    });
    await new Promise<void>((resolve) => server.listen(path, resolve));
    chmodSync(path, 0o666);
  });

  afterAll(async () => {
    for (const socket of sockets) socket.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    rmSync(dir, { recursive: true, force: true });
  });

  it('the addon reads its supplementary groups with SO_PEERGROUPS', async () => {
    const socket = await connectAsNobody(server, path, [EXTRA_GROUP]);
    const addon = loadPeerCredAddon();
    expect(addon.peerCred(fdOf(socket))).toMatchObject({ uid: NOBODY, gid: NOBODY });
    expect(addon.peerGroups?.(fdOf(socket))).toEqual([EXTRA_GROUP]);
  });

  it('peerCredentials keeps the groups it had at connect(), after it has exited', async () => {
    const socket = await connectAsNobody(server, path, [EXTRA_GROUP, 4343]);
    const creds = await peerCredentials(socket);
    expect(creds).toMatchObject({ uid: NOBODY, gid: NOBODY, groups: [NOBODY, EXTRA_GROUP, 4343] });
  });

  it('a client without supplementary groups has its primary group only', async () => {
    const socket = await connectAsNobody(server, path, []);
    expect(loadPeerCredAddon().peerGroups?.(fdOf(socket))).toEqual([]);
    expect((await peerCredentials(socket)).groups).toEqual([NOBODY]);
  });

  it('a client with more groups than the first buffer holds gets them all', async () => {
    const many = Array.from({ length: 100 }, (_, i) => 5000 + i);
    const socket = await connectAsNobody(server, path, many);
    expect(loadPeerCredAddon().peerGroups?.(fdOf(socket))).toEqual(many);
  });
});
