/**
 * The daemon as a systemd service (`Type=notify`): READY=1 once the first role decision
 * is made (the configuration was valid, the local Redis was checked, the node left
 * INIT), STATUS= kept to one current line, STOPPING=1 when a stop begins, and WATCHDOG=1
 * from the main loop at half of `WatchdogSec` — only while the runtime's loops are
 * turning, so a wedged loop gets the daemon killed and restarted.
 */
import type { Notifier } from '../adapters/sd-notify.js';
import { vipDesired, type CoreState } from '../core/state.js';
import type { Event } from '../core/types.js';
import type { RuntimeObserver } from './runtime.js';

/** The line `systemctl status redis-ha` shows. */
export function statusLine(s: CoreState): string {
  const parts = [`${s.role}${vipDesired(s) ? ', VIP held' : ''}`];
  parts.push(s.peer ? `peer ${s.peer.nodeName} ${s.peer.state}` : 'peer not heard yet');
  if (s.maintenance.on) parts.push('maintenance on');
  if (s.switchover) parts.push(`switchover ${s.switchover.phase}`);
  parts.push(s.reason);
  return parts.join('; ');
}

/** Feeds the service manager from the runtime's steps. */
export class ServiceNotifier implements RuntimeObserver {
  private readySent = false;
  private watchdogTimer: NodeJS.Timeout | null = null;

  constructor(private readonly notifier: Notifier) {}

  stepped(before: CoreState, after: CoreState, event: Event): void {
    if (event.type === 'shutdown-requested') {
      this.notifier.stopping(`stopping: ${statusLine(after)}`);
      return;
    }
    if (!this.readySent) {
      if (after.role === 'INIT') return;
      this.readySent = true;
      this.notifier.ready(statusLine(after));
      return;
    }
    if (after !== before) this.notifier.status(statusLine(after));
  }

  /**
   * Pings the watchdog every `watchdogIntervalMs` while `alive(bound)` holds; `bound` is
   * how old the last completed health check may be.
   */
  startWatchdog(alive: (withinMs: number) => boolean, boundMs: number): void {
    const every = this.notifier.watchdogIntervalMs;
    if (every === null || this.watchdogTimer !== null) return;
    this.notifier.watchdog();
    this.watchdogTimer = setInterval(() => {
      if (alive(boundMs)) this.notifier.watchdog();
    }, every);
  }

  stop(): void {
    if (this.watchdogTimer !== null) clearInterval(this.watchdogTimer);
    this.watchdogTimer = null;
  }
}
