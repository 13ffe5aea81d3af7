/**
 * A NOTIFY_SOCKET listener for tests, standing in for systemd: a python3 process bound
 * to a Unix datagram socket that prints every datagram it receives as one JSON line
 * with its arrival time (Node cannot bind Unix datagram sockets). Started with
 * `startNotifyListener(path)`, stopped by PID with `stop()`.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';

/** One datagram as received: its `KEY=value` lines and arrival time (ms since the epoch). */
export interface NotifyMessage {
  readonly atMs: number;
  readonly fields: Readonly<Record<string, string>>;
}

const SCRIPT = `
import json, os, socket, sys, time
path = sys.argv[1]
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
s.bind(path if not path.startswith('@') else '\\0' + path[1:])
if not path.startswith('@'):
    os.chmod(path, 0o777)
print(json.dumps({"ready": True}), flush=True)
while True:
    data = s.recv(4096)
    print(json.dumps({"atMs": time.time() * 1000, "text": data.decode("utf-8", "replace")}), flush=True)
`;

export interface NotifyListener {
  readonly messages: NotifyMessage[];
  /** Messages carrying `key` (e.g. READY, WATCHDOG). */
  with(key: string): NotifyMessage[];
  stop(): Promise<void>;
}

export async function startNotifyListener(path: string, startTimeoutMs = 10_000): Promise<NotifyListener> {
  const child: ChildProcess = spawn('python3', ['-c', SCRIPT, path], { stdio: ['ignore', 'pipe', 'pipe'] });
  const messages: NotifyMessage[] = [];
  let buffered = '';
  let stderr = '';
  let readyResolve: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (readyResolve = resolve));
  child.stdout?.on('data', (chunk: Buffer) => {
    buffered += chunk.toString();
    for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      const parsed = JSON.parse(line) as { ready?: boolean; atMs?: number; text?: string };
      if (parsed.ready) {
        readyResolve();
        continue;
      }
      const fields: Record<string, string> = {};
      for (const assignment of (parsed.text ?? '').split('\n')) {
        const eq = assignment.indexOf('=');
        if (eq > 0) fields[assignment.slice(0, eq)] = assignment.slice(eq + 1);
      }
      messages.push({ atMs: parsed.atMs ?? 0, fields });
    }
  });
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`notify listener did not start: ${stderr}`)), startTimeoutMs);
  });
  // A spawn failure (python3 missing: ENOENT) is an 'error' event; without a listener it
  // would be thrown as an uncaught exception instead of failing the start.
  const failed = new Promise<never>((_, reject) => {
    child.on('error', (error) => reject(new Error(`notify listener did not start: ${error.message}`, { cause: error })));
  });
  failed.catch(() => undefined);
  try {
    await Promise.race([ready, timeout, failed]);
  } catch (error) {
    if (child.pid !== undefined && child.exitCode === null && child.signalCode === null) {
      try {
        process.kill(child.pid, 'SIGTERM');
      } catch {
        // Already gone.
      }
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
  return {
    messages,
    with: (key) => messages.filter((m) => key in m.fields),
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null && child.pid !== undefined) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        process.kill(child.pid, 'SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, 5_000))]);
      }
      if (!path.startsWith('@') && existsSync(path)) {
        const { rmSync } = await import('node:fs');
        rmSync(path, { force: true });
      }
    },
  };
}
