/**
 * The audit log: an append-only JSON-lines file, one record per state change, Redis role
 * command, VIP claim or release, dual-master resolution and configuration load. Each
 * record is written and fsynced before the next one starts, in order; `reopen()` (on
 * SIGHUP) closes and reopens the path so logrotate can move the file away.
 *
 * Operational logs go through pino; this file is the durable trail an operator reads
 * after an incident, so a failed write is logged loudly but never stops the daemon.
 */
import { mkdir, open, type FileHandle } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Logger } from '../daemon/logger.js';

/** One audit line. `time` is wall-clock ISO 8601; the rest is the event's own data. */
export interface AuditRecord {
  readonly time: string;
  readonly node: string;
  readonly event: string;
  readonly [field: string]: unknown;
}

/** Serialised appends with fsync; safe to call without awaiting (order is preserved). */
export class AuditLog {
  private handle: FileHandle | null = null;
  private chain: Promise<void> = Promise.resolve();
  private failures = 0;

  constructor(
    private readonly path: string,
    private readonly node: string,
    private readonly logger: Logger,
    private readonly clock: () => Date = () => new Date(),
  ) {}

  /** Opens (creating the directory if needed) for appending. Throws if the path is unusable. */
  async open(): Promise<void> {
    await mkdir(dirname(this.path), { recursive: true, mode: 0o750 });
    this.handle = await open(this.path, 'a', 0o640);
  }

  /** Queues one record; resolves when it is on disk (or its write failed and was logged). */
  append(event: string, data: Readonly<Record<string, unknown>> = {}): Promise<void> {
    const record: AuditRecord = { time: this.clock().toISOString(), node: this.node, event, ...data };
    const line = `${JSON.stringify(record)}\n`;
    this.chain = this.chain.then(async () => {
      try {
        if (!this.handle) await this.open();
        await this.handle!.appendFile(line, 'utf8');
        await this.handle!.sync();
      } catch (error) {
        this.failures++;
        this.logger.error({ err: error, path: this.path, event, failures: this.failures }, 'audit write failed');
      }
    });
    return this.chain;
  }

  /** Closes and reopens the file after the queued records (log rotation). */
  reopen(): Promise<void> {
    this.chain = this.chain.then(async () => {
      try {
        await this.handle?.close();
        this.handle = null;
        await this.open();
        this.logger.info({ path: this.path }, 'audit log reopened');
      } catch (error) {
        this.logger.error({ err: error, path: this.path }, 'audit log reopen failed');
      }
    });
    return this.chain;
  }

  /** Waits for queued records, then closes. */
  async close(): Promise<void> {
    await this.chain;
    await this.handle?.close();
    this.handle = null;
  }
}
