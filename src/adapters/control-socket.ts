/**
 * The daemon's control socket: a Unix stream socket the CLI (`status`, `switchover`, ...)
 * talks to. The wire protocol is one JSON line each way per connection:
 *
 *   client -> daemon   {"command": "switchover", "args": {...}}\n   (at most 64 KiB)
 *   daemon -> client   {"ok": true, ...}\n                           then the daemon closes
 *
 * Who may connect is decided twice. The file mode and group (`control.group`) keep
 * strangers off the socket entirely; SO_PEERCRED (see peer-cred.ts) then tells the
 * handler who is asking, so it can log the caller and refuse state-changing commands
 * to callers that are not root, not the daemon's own user and not in the control group.
 * This file only computes `authorized`; it never acts on a request or refuses one
 * itself: like Patroni's API, it hands the request to the daemon's handler, which
 * queues it for the runtime loop.
 *
 * A reply can take as long as a switchover (tens of seconds), so only the wait for the
 * request line is timed; once a request is in, the connection stays until the reply.
 *
 * Anyone who may open the socket could otherwise hold it shut (issue 10, item 4):
 *   1. a client trickling one byte at a time: the wait for the request line is a total
 *      deadline from accept, not an idle timeout that every byte resets;
 *   2. a client opening every slot: of `maxConnections`, `reservedConnections` are kept
 *      for privileged callers (root, the daemon's uid, control.group), decided from
 *      SO_PEERCRED before a byte of the request is read, so `status`, `switchover` and
 *      `maintenance` from an operator always find a slot;
 *   3. a flood of turned-away, timed-out or malformed connections: each of those warnings
 *      is logged at most once per interval, with the count of the ones held back.
 */
import { chmod, chown, lstat, mkdir, unlink } from 'node:fs/promises';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { dirname } from 'node:path';
import type { Logger } from '../logger.js';
import { errorMessage, EXIT_CONFIG, FatalError, RedisHaError } from '../errors.js';
import { groupId, peerCredentials, type PeerCredentials } from './peer-cred.js';

/** Largest request line accepted, without its newline. */
export const MAX_REQUEST_BYTES = 64 * 1024;
/** Largest reply line the client accepts (a status reply is a few KiB). */
export const MAX_REPLY_BYTES = 4 * 1024 * 1024;

const DEFAULT_MODE = 0o660;
/** Connections served at once (privileged and not). */
export const DEFAULT_MAX_CONNECTIONS = 16;
/** Of `DEFAULT_MAX_CONNECTIONS`, how many an unprivileged caller can never take. */
export const DEFAULT_RESERVED_CONNECTIONS = 4;
/** Total time from accept to a complete request line; the CLI sends its line at once. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** A repeated warning (turned away, timed out, malformed) is logged at most once per interval. */
export const WARNING_INTERVAL_MS = 60_000;
const PARENT_DIRECTORY_MODE = 0o755;
/** How long `start()` waits to learn whether an existing socket has a listener. */
const PROBE_TIMEOUT_MS = 2_000;
/** sizeof(sockaddr_un.sun_path) on Linux, minus the terminating NUL. */
const SUN_PATH_MAX_BYTES = 107;
const NEWLINE = 0x0a;

/** One request: a command name and its arguments. */
export interface ControlRequest {
  readonly command: string;
  readonly args: Readonly<Record<string, unknown>>;
}

/** Who sent a request, as far as the kernel can tell. */
export interface Caller {
  /** SO_PEERCRED credentials, or null when they could not be read. */
  readonly credentials: PeerCredentials | null;
  /** Why `credentials` is null; null when they are known. */
  readonly credentialError: string | null;
  /**
   * True when the credentials are known and the caller is root, the daemon's own uid,
   * or a member of the control group. Unknown credentials are never authorized.
   */
  readonly authorized: boolean;
  /** For logs and the audit trail: `alice (uid 1000, pid 4242)` or `unknown caller (<why>)`. */
  readonly description: string;
}

/**
 * The daemon's side: turns a request into a reply object, which must contain `ok: boolean`.
 * A thrown error becomes `{ ok: false, error: message }`.
 */
export type ControlHandler = (request: ControlRequest, caller: Caller) => Promise<Record<string, unknown>>;

/** Options of `ControlServer`. */
export interface ControlServerOptions {
  /** Socket path (`control.socket`). */
  readonly path: string;
  /** Group that owns the socket and whose members are authorized (`control.group`); null: root's group. */
  readonly group: string | null;
  /** File mode of the socket; default 0o660. */
  readonly mode?: number;
  readonly logger: Logger;
  readonly handler: ControlHandler;
  /** Connections served at once; extra ones get an error reply. Default 16. */
  readonly maxConnections?: number;
  /**
   * Of `maxConnections`, how many only privileged callers (root, the daemon's uid,
   * control.group) may take. Default 4; at most `maxConnections - 1`.
   */
  readonly reservedConnections?: number;
  /** Total time a client has, from accept, to send its whole request line; default 5 000 ms. */
  readonly requestTimeoutMs?: number;
  /** Interval of the rate-limited warnings; default 60 000 ms. */
  readonly warningIntervalMs?: number;
}

/** The client could not get a reply from the daemon. `code` says why; the message is for operators. */
export class ControlError extends RedisHaError {
  constructor(code: string, message: string, options: { cause?: unknown } = {}) {
    super(code, message, { recoverable: true, ...options });
  }
}

/** Listens on the control socket and hands each request to the daemon's handler. */
export class ControlServer {
  private readonly path: string;
  private readonly mode: number;
  private readonly maxConnections: number;
  private readonly reservedConnections: number;
  private readonly requestTimeoutMs: number;
  private readonly logger: Logger;
  private readonly warnings: ThrottledWarnings;
  private server: Server | null = null;
  /** Inode of the socket we created, so `stop()` never unlinks another daemon's socket. */
  private socketInode: bigint | null = null;
  private controlGid: number | null = null;
  private stopping = false;
  /** Every open connection, for `stop()`. */
  private readonly connections = new Set<Socket>();
  /** Connections being served (not those turned away), for the limit. */
  private readonly serving = new Set<Socket>();
  /** The unprivileged part of `serving`, for the reserved slots. */
  private readonly servingUnprivileged = new Set<Socket>();
  /** Admissions in accept order; the chain never rejects. */
  private admissions: Promise<void> = Promise.resolve();

  constructor(private readonly options: ControlServerOptions) {
    this.path = options.path;
    this.mode = options.mode ?? DEFAULT_MODE;
    this.maxConnections = options.maxConnections ?? DEFAULT_MAX_CONNECTIONS;
    // At least one slot stays open to everyone; a negative or oversized reserve is clamped.
    this.reservedConnections = Math.max(0, Math.min(options.reservedConnections ?? DEFAULT_RESERVED_CONNECTIONS, this.maxConnections - 1));
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
    this.logger = options.logger;
    this.warnings = new ThrottledWarnings(this.logger, options.warningIntervalMs ?? WARNING_INTERVAL_MS);
  }

  /** Slots an unprivileged caller may hold at once. */
  private get unprivilegedLimit(): number {
    return this.maxConnections - this.reservedConnections;
  }

  /**
   * Creates the socket (replacing a stale one), sets its mode and group, and starts
   * accepting. Throws `FatalError`: 'CONTROL_SOCKET_IN_USE' (another daemon listens
   * there), 'CONTROL_SOCKET_PATH' (the path is unusable or not a socket),
   * 'CONTROL_GROUP_UNKNOWN' (`control.group` does not exist), 'CONTROL_SOCKET_PERMISSIONS'.
   */
  async start(): Promise<void> {
    if (this.server) throw new RedisHaError('CONTROL_ALREADY_STARTED', `the control socket ${this.path} is already open`);
    const path = this.path;
    if (Buffer.byteLength(path) > SUN_PATH_MAX_BYTES) {
      throw new FatalError(
        'CONTROL_SOCKET_PATH',
        `control socket path ${path} is too long (${Buffer.byteLength(path)} bytes, Unix sockets allow ${SUN_PATH_MAX_BYTES}): set control.socket to a shorter path`,
        EXIT_CONFIG,
      );
    }
    // Resolve the group before touching the filesystem, so a typo leaves nothing behind.
    this.controlGid = this.resolveGroup();
    try {
      await mkdir(dirname(path), { recursive: true, mode: PARENT_DIRECTORY_MODE });
    } catch (error) {
      throw new FatalError('CONTROL_SOCKET_PATH', `cannot create the directory of the control socket ${path}: ${errorMessage(error)}`, EXIT_CONFIG, {
        cause: error,
      });
    }
    await this.removeStaleSocket();

    this.stopping = false;
    const server = createServer({ allowHalfOpen: true });
    server.on('connection', (socket: Socket) => this.accept(socket));
    await listen(server, path);
    try {
      await chmod(path, this.mode);
      if (this.controlGid !== null) await chown(path, -1, this.controlGid);
      this.socketInode = (await lstat(path, { bigint: true })).ino;
    } catch (error) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      await unlink(path).catch(() => undefined);
      throw new FatalError(
        'CONTROL_SOCKET_PERMISSIONS',
        `cannot set mode ${this.mode.toString(8)}${this.options.group ? ` and group ${this.options.group}` : ''} on the control socket ${path}: ${errorMessage(error)}`,
        1,
        { cause: error },
      );
    }
    server.on('error', (error) => this.logger.error({ err: error, path }, 'control socket error'));
    this.server = server;
    this.logger.info(
      { path, mode: this.mode.toString(8), group: this.options.group, gid: this.controlGid },
      'control socket listening',
    );
  }

  /** Stops accepting, drops open connections (pending replies are lost) and removes the socket file. */
  async stop(): Promise<void> {
    this.stopping = true;
    const server = this.server;
    this.server = null;
    if (!server) return;
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of this.connections) socket.destroy();
    await closed;
    this.warnings.flush();
    // libuv unlinks the path on close already; this covers a path renamed or re-created meanwhile.
    try {
      const stats = await lstat(this.path, { bigint: true });
      if (stats.isSocket() && stats.ino === this.socketInode) await unlink(this.path);
    } catch (error) {
      if (errnoCode(error) !== 'ENOENT') this.logger.warn({ err: error, path: this.path }, 'control socket not removed');
    }
    this.socketInode = null;
    this.logger.info({ path: this.path }, 'control socket closed');
  }

  private resolveGroup(): number | null {
    const group = this.options.group;
    if (group === null) return null;
    const gid = groupId(group);
    if (gid === null) {
      throw new FatalError(
        'CONTROL_GROUP_UNKNOWN',
        `control.group: group "${group}" does not exist in /etc/group; create it (groupadd ${group}) or change control.group`,
        EXIT_CONFIG,
      );
    }
    return gid;
  }

  /** A socket file left by a daemon that died is removed; a live one or a non-socket is fatal. */
  private async removeStaleSocket(): Promise<void> {
    const path = this.path;
    let isSocket: boolean;
    try {
      isSocket = (await lstat(path)).isSocket();
    } catch (error) {
      if (errnoCode(error) === 'ENOENT') return;
      throw new FatalError('CONTROL_SOCKET_PATH', `cannot inspect the control socket path ${path}: ${errorMessage(error)}`, EXIT_CONFIG, {
        cause: error,
      });
    }
    if (!isSocket) {
      throw new FatalError(
        'CONTROL_SOCKET_PATH',
        `${path} exists and is not a socket: remove it, or set control.socket to another path`,
        EXIT_CONFIG,
      );
    }
    const state = await probeSocket(path);
    if (state === 'listening') {
      throw new FatalError('CONTROL_SOCKET_IN_USE', `another redis-ha daemon is listening on ${path}`);
    }
    if (state === 'stale') {
      this.logger.warn({ path }, 'removing stale control socket');
      await unlink(path).catch((error: unknown) => {
        if (errnoCode(error) !== 'ENOENT') {
          throw new FatalError('CONTROL_SOCKET_PATH', `cannot remove the stale control socket ${path}: ${errorMessage(error)}`, EXIT_CONFIG, {
            cause: error,
          });
        }
      });
    }
  }

  private accept(socket: Socket): void {
    this.connections.add(socket);
    let deadline: NodeJS.Timeout | undefined;
    socket.once('close', () => {
      clearTimeout(deadline);
      this.connections.delete(socket);
      this.serving.delete(socket);
      this.servingUnprivileged.delete(socket);
    });
    socket.on('error', (error) => this.logger.debug({ err: error }, 'control connection error'));
    if (this.stopping) {
      socket.destroy();
      return;
    }
    // Scenario 1 of the header: the clock starts at accept and no byte resets it.
    const line = new RequestLine();
    deadline = setTimeout(() => {
      if (line.done) return;
      line.done = true;
      this.warnings.warn('timeout', { requestTimeoutMs: this.requestTimeoutMs }, 'control client sent no complete request in time');
      this.replyAndClose(socket, { ok: false, error: `no complete request within ${this.requestTimeoutMs} ms` });
    }, this.requestTimeoutMs);
    // SO_PEERCRED is read now (the addon call is synchronous, before the client can go
    // away); the request is not read until the caller has a slot (scenario 2).
    const timer = deadline;
    const credentials = peerCredentials(socket).then(
      (found): CredentialResult => ({ credentials: found, credentialError: null }),
      (error: unknown): CredentialResult => ({ credentials: null, credentialError: errorMessage(error) }),
    );
    // Slots go in the order connections were accepted, however long each lookup takes.
    this.admissions = this.admissions
      .then(async () => this.admit(socket, line, timer, await credentials))
      .catch((error: unknown) => {
        this.logger.error({ err: error }, 'control connection not admitted');
        socket.destroy();
      });
  }

  /** Gives the caller a slot (or turns it away) and starts reading its request. */
  private admit(socket: Socket, line: RequestLine, deadline: NodeJS.Timeout, result: CredentialResult): void {
    if (line.done || socket.destroyed) return;
    const caller = this.caller(result);
    const full = this.serving.size >= this.maxConnections;
    const unprivilegedFull = !caller.authorized && this.servingUnprivileged.size >= this.unprivilegedLimit;
    if (full || unprivilegedFull) {
      line.done = true;
      clearTimeout(deadline);
      this.warnings.warn(
        'turned-away',
        { limit: this.maxConnections, reserved: this.reservedConnections, serving: this.serving.size, caller: caller.description },
        'control connection turned away: too many connections',
      );
      this.replyAndClose(socket, {
        ok: false,
        error: full
          ? `too many control connections (limit ${this.maxConnections}); try again later`
          : `too many control connections from unprivileged callers (limit ${this.unprivilegedLimit}; ` +
            `${this.reservedConnections} more are kept for root, the daemon's user and control.group); try again later`,
      });
      return;
    }
    this.serving.add(socket);
    if (!caller.authorized) this.servingUnprivileged.add(socket);
    this.readRequestLine(socket, line, (text) => {
      clearTimeout(deadline);
      void this.serve(socket, text, caller);
    });
  }

  /** Collects bytes up to the first newline (or the client's end of stream) and calls `onLine` once. */
  private readRequestLine(socket: Socket, line: RequestLine, onLine: (line: string) => void): void {
    if (socket.readableEnded) {
      // The client half-closed without sending anything before it had a slot.
      line.done = true;
      socket.destroy();
      return;
    }
    const chunks: Buffer[] = [];
    let size = 0;
    const tooLarge = (): void => {
      line.done = true;
      this.warnings.warn('too-large', { limitBytes: MAX_REQUEST_BYTES }, 'control request too large');
      this.replyAndClose(socket, { ok: false, error: `request larger than ${MAX_REQUEST_BYTES} bytes` });
    };
    socket.on('data', (chunk: Buffer) => {
      if (line.done) return; // anything after the request line is read and dropped
      const newline = chunk.indexOf(NEWLINE);
      if (newline === -1) {
        chunks.push(chunk);
        size += chunk.length;
        if (size > MAX_REQUEST_BYTES) tooLarge();
        return;
      }
      if (size + newline > MAX_REQUEST_BYTES) {
        tooLarge();
        return;
      }
      chunks.push(chunk.subarray(0, newline));
      line.done = true;
      onLine(Buffer.concat(chunks).toString('utf8'));
    });
    socket.on('end', () => {
      if (line.done) return;
      line.done = true;
      // A client that half-closes after its request (socat, `nc -N`) still gets a reply.
      if (size === 0) socket.destroy();
      else onLine(Buffer.concat(chunks).toString('utf8'));
    });
  }

  private async serve(socket: Socket, line: string, caller: Caller): Promise<void> {
    const parsed = parseRequest(line);
    if ('error' in parsed) {
      this.warnings.warn('rejected', { caller: caller.description, reason: parsed.error }, 'control request rejected');
      this.replyAndClose(socket, { ok: false, error: parsed.error });
      return;
    }
    const { request } = parsed;
    this.logger.debug({ command: request.command, caller: caller.description, authorized: caller.authorized }, 'control request received');
    let reply: Record<string, unknown>;
    try {
      reply = await this.options.handler(request, caller);
      if (typeof reply !== 'object' || reply === null || typeof reply.ok !== 'boolean') {
        this.logger.error({ command: request.command }, 'control handler returned a reply without ok');
        reply = { ok: false, error: `internal error: the daemon returned no "ok" for ${request.command}` };
      }
    } catch (error) {
      this.logger.error({ err: error, command: request.command, caller: caller.description }, 'control request failed');
      reply = { ok: false, error: errorMessage(error) };
    }
    this.replyAndClose(socket, reply);
  }

  private caller({ credentials, credentialError }: CredentialResult): Caller {
    if (credentials === null) {
      this.warnings.warn('unknown-caller', { reason: credentialError }, 'control caller unknown');
      return Object.freeze({
        credentials: null,
        credentialError,
        authorized: false,
        description: `unknown caller (${credentialError ?? 'no credentials'})`,
      });
    }
    const gid = this.controlGid;
    const authorized =
      credentials.uid === 0 || credentials.uid === process.getuid?.() || (gid !== null && credentials.groups.includes(gid));
    return Object.freeze({
      credentials,
      credentialError: null,
      authorized,
      description: `${credentials.user} (uid ${credentials.uid}, pid ${credentials.pid})`,
    });
  }

  /** Writes one reply line, half-closes, and drops the connection once the line is out. */
  private replyAndClose(socket: Socket, reply: Readonly<Record<string, unknown>>): void {
    let line: string;
    try {
      line = `${JSON.stringify(reply)}\n`;
    } catch (error) {
      this.logger.error({ err: error }, 'control reply not serialisable');
      line = `${JSON.stringify({ ok: false, error: `internal error: the reply could not be encoded (${errorMessage(error)})` })}\n`;
    }
    if (socket.destroyed || !socket.writable) {
      this.logger.debug('control client left before its reply');
      socket.destroy();
      return;
    }
    socket.end(line, () => socket.destroy());
  }
}

/**
 * For the CLI: sends one request to the daemon on `path` and returns its reply.
 * Throws `ControlError` with an operator-readable message: 'CONTROL_UNREACHABLE' (no
 * socket, stale socket), 'CONTROL_PERMISSION_DENIED', 'CONTROL_TIMEOUT' (no reply within
 * `timeoutMs`, connecting included), 'CONTROL_CONNECTION_LOST', 'CONTROL_BAD_REPLY',
 * 'CONTROL_BAD_REQUEST'.
 */
export async function sendControlRequest(
  path: string,
  request: ControlRequest,
  timeoutMs: number,
): Promise<Record<string, unknown>> {
  let line: string;
  try {
    line = JSON.stringify({ command: request.command, args: request.args });
  } catch (error) {
    throw new ControlError('CONTROL_BAD_REQUEST', `cannot encode the ${request.command} request: ${errorMessage(error)}`, { cause: error });
  }
  if (Buffer.byteLength(line) > MAX_REQUEST_BYTES) {
    throw new ControlError('CONTROL_BAD_REQUEST', `the ${request.command} request is larger than ${MAX_REQUEST_BYTES} bytes`);
  }

  return new Promise<Record<string, unknown>>((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let connected = false;
    let settled = false;
    const socket = createConnection({ path });
    const settle = (outcome: { reply: Record<string, unknown> } | { error: ControlError }): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      if ('error' in outcome) reject(outcome.error);
      else resolve(outcome.reply);
    };
    const timer = setTimeout(
      () => settle({ error: new ControlError('CONTROL_TIMEOUT', `no reply from the daemon within ${timeoutMs} ms`) }),
      timeoutMs,
    );
    const lost = (detail: string, cause?: unknown): void =>
      settle({
        error: new ControlError('CONTROL_CONNECTION_LOST', `the daemon on ${path} closed the connection without replying (${detail})`, {
          cause,
        }),
      });

    socket.on('connect', () => {
      connected = true;
      socket.write(`${line}\n`);
    });
    socket.on('data', (chunk: Buffer) => {
      const newline = chunk.indexOf(NEWLINE);
      chunks.push(newline === -1 ? chunk : chunk.subarray(0, newline));
      size += newline === -1 ? chunk.length : newline;
      if (size > MAX_REPLY_BYTES) {
        settle({ error: new ControlError('CONTROL_BAD_REPLY', `malformed reply from the daemon on ${path}: longer than ${MAX_REPLY_BYTES} bytes`) });
      } else if (newline !== -1) {
        settle(parseReply(path, Buffer.concat(chunks).toString('utf8')));
      }
    });
    socket.on('end', () => {
      if (size > 0) settle(parseReply(path, Buffer.concat(chunks).toString('utf8')));
      else lost('end of stream');
    });
    socket.on('error', (error) => {
      if (connected) lost(errnoCode(error) ?? error.message, error);
      else settle({ error: connectError(path, error) });
    });
    socket.on('close', () => lost('connection closed'));
  });
}

interface CredentialResult {
  readonly credentials: PeerCredentials | null;
  readonly credentialError: string | null;
}

/** Whether a connection's request line is settled (read, refused or timed out); set once. */
class RequestLine {
  done = false;
}

/**
 * Warnings a client can provoke at will, each logged at most once per interval: the
 * first at once, the rest counted and logged as one line (`suppressed`) when the
 * interval ends. Scenario 3 of the header.
 */
class ThrottledWarnings {
  private readonly held = new Map<string, { message: string; fields: Record<string, unknown>; suppressed: number; timer: NodeJS.Timeout }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  warn(kind: string, fields: Record<string, unknown>, message: string): void {
    const held = this.held.get(kind);
    if (held) {
      held.suppressed++;
      held.fields = fields;
      return;
    }
    this.logger.warn(fields, message);
    this.hold(kind, message, fields);
  }

  /** Logs what is held back now (on stop) and forgets the intervals. */
  flush(): void {
    for (const [kind, held] of this.held) {
      clearTimeout(held.timer);
      this.held.delete(kind);
      if (held.suppressed > 0) this.logger.warn({ ...held.fields, suppressed: held.suppressed, intervalMs: this.intervalMs }, held.message);
    }
  }

  private hold(kind: string, message: string, fields: Record<string, unknown>): void {
    const timer = setTimeout(() => {
      const held = this.held.get(kind);
      this.held.delete(kind);
      if (held && held.suppressed > 0) {
        this.logger.warn({ ...held.fields, suppressed: held.suppressed, intervalMs: this.intervalMs }, held.message);
        this.hold(kind, message, held.fields);
      }
    }, this.intervalMs);
    timer.unref();
    this.held.set(kind, { message, fields, suppressed: 0, timer });
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/**
 * Parses one request line. Never throws: whatever the bytes, the result is a request
 * or an error message for the reply.
 */
export function parseRequest(line: string): { request: ControlRequest } | { error: string } {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (error) {
    return { error: `invalid JSON in request: ${errorMessage(error)}` };
  }
  if (!isPlainObject(value)) return { error: 'the request must be a JSON object {"command": "...", "args": {...}}' };
  const { command, args } = value;
  if (typeof command !== 'string' || command === '') return { error: 'the request has no "command" (a non-empty string)' };
  if (args !== undefined && !isPlainObject(args)) return { error: '"args" must be a JSON object' };
  return { request: { command, args: args ?? {} } };
}

function parseReply(path: string, text: string): { reply: Record<string, unknown> } | { error: ControlError } {
  const bad = (reason: string): { error: ControlError } => ({
    error: new ControlError('CONTROL_BAD_REPLY', `malformed reply from the daemon on ${path}: ${reason}`),
  });
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return bad(`not JSON: ${JSON.stringify(text.length > 200 ? `${text.slice(0, 200)}...` : text)}`);
  }
  if (!isPlainObject(value)) return bad('not a JSON object');
  if (typeof value.ok !== 'boolean') return bad('no boolean "ok" field');
  return { reply: value };
}

/** Translates a connect() failure into what an operator should do about it. */
function connectError(path: string, error: Error): ControlError {
  const code = errnoCode(error);
  switch (code) {
    case 'ENOENT':
      return new ControlError(
        'CONTROL_UNREACHABLE',
        `no redis-ha daemon is listening on ${path} (is the service running? is control.socket the same in both configs?)`,
        { cause: error },
      );
    case 'EACCES':
    case 'EPERM':
      return new ControlError(
        'CONTROL_PERMISSION_DENIED',
        `permission denied on ${path}: run as root or as a member of the socket's group`,
        { cause: error },
      );
    case 'ECONNREFUSED':
      return new ControlError('CONTROL_UNREACHABLE', `stale socket ${path}: the daemon is not running`, { cause: error });
    default:
      return new ControlError('CONTROL_UNREACHABLE', `cannot connect to the daemon on ${path}: ${error.message}`, { cause: error });
  }
}

/** Whether something accepts connections on the socket at `path`. */
async function probeSocket(path: string): Promise<'listening' | 'stale' | 'gone'> {
  return new Promise((resolve, reject) => {
    const socket = createConnection({ path });
    const done = (state: 'listening' | 'stale' | 'gone'): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve(state);
    };
    // A listener whose backlog is full does not answer at once; it is still a live daemon.
    const timer = setTimeout(() => done('listening'), PROBE_TIMEOUT_MS);
    socket.on('connect', () => done('listening'));
    socket.on('error', (error) => {
      switch (errnoCode(error)) {
        case 'ECONNREFUSED':
          return done('stale');
        case 'ENOENT':
          return done('gone');
        case 'EAGAIN':
          return done('listening');
        default:
          clearTimeout(timer);
          socket.destroy();
          reject(
            new FatalError('CONTROL_SOCKET_PATH', `cannot check the existing control socket ${path}: ${error.message}`, EXIT_CONFIG, {
              cause: error,
            }),
          );
      }
    });
  });
}

function listen(server: Server, path: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const onError = (error: Error): void => {
      server.off('listening', onListening);
      if (errnoCode(error) === 'EADDRINUSE') {
        reject(new FatalError('CONTROL_SOCKET_IN_USE', `another redis-ha daemon is listening on ${path}`, 1, { cause: error }));
      } else {
        reject(new FatalError('CONTROL_SOCKET_PATH', `cannot listen on the control socket ${path}: ${error.message}`, EXIT_CONFIG, { cause: error }));
      }
    };
    const onListening = (): void => {
      server.off('error', onError);
      resolve();
    };
    server.once('error', onError);
    server.once('listening', onListening);
    server.listen(path);
  });
}

function errnoCode(error: unknown): string | undefined {
  const code = (error as { code?: unknown } | null)?.code;
  return typeof code === 'string' ? code : undefined;
}

