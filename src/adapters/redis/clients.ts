/**
 * Application clients: after a role change the clients still attached to the old
 * master are disconnected (`CLIENT KILL`) so they reconnect through the VIP. Our own
 * connections, and the other daemon's, are named with a shared `CLIENT SETNAME`
 * prefix and survive; replication links are not of type normal and survive too.
 */
import type { Logger } from '../../logger.js';
import { describeError, type Connection } from './connection.js';

/** The id and name of each line of `CLIENT LIST` (`id=7 addr=... name=foo ...`). */
export function parseClientList(text: string): { id: string; name: string }[] {
  const clients: { id: string; name: string }[] = [];
  for (const line of text.split('\n')) {
    const id = /(?:^|\s)id=(\d+)/.exec(line)?.[1];
    if (id === undefined) continue;
    const name = /(?:^|\s)name=(\S*)/.exec(line)?.[1] ?? '';
    clients.push({ id, name });
  }
  return clients;
}

/**
 * `CLIENT KILL`s every normal client whose name does not start with `keepPrefix`.
 * Returns how many were killed; throws when the server fails.
 */
export async function killNormalClients(connection: Connection, timeoutMs: number, keepPrefix: string): Promise<number> {
  return connection.run(timeoutMs, async (c) => {
    const list = await c.client('LIST', 'TYPE', 'NORMAL');
    const ids = parseClientList(typeof list === 'string' ? list : String(list))
      .filter((entry) => !entry.name.startsWith(keepPrefix))
      .map((entry) => entry.id);
    if (ids.length === 0) return 0;
    const pipeline = c.pipeline();
    for (const id of ids) pipeline.call('CLIENT', 'KILL', 'ID', id);
    const results = (await pipeline.exec()) ?? [];
    return results.filter(([err, reply]) => err === null && Number(reply) > 0).length;
  });
}

/**
 * Kills the application clients of the server behind `connection` (not those named
 * with `keepPrefix`); the step text for `detail`. Never throws: the role change it
 * follows already happened, and a failed kill only delays clients noticing (every
 * write they send meets READONLY, and they find the VIP on their own).
 */
export async function disconnectApplicationClients(
  connection: Connection,
  timeoutMs: number,
  keepPrefix: string,
  log: Logger,
): Promise<string> {
  try {
    const killed = await killNormalClients(connection, timeoutMs, keepPrefix);
    if (killed === 0) return 'no application clients to disconnect';
    log.info({ killed }, 'application clients disconnected');
    return `disconnected ${killed} application client(s)`;
  } catch (err) {
    return `could not disconnect application clients (${describeError(err)})`;
  }
}
