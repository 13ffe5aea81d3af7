/**
 * Feeds `Metrics` from the runtime's steps: counters for what happened (transitions,
 * failed health checks, takeovers and their duration, switchovers, stalls) and, after
 * every step, the gauges from the current state. The VIP gauge is what the reconcile
 * loop last saw the kernel hold, not what the core wants.
 */
import type { AdvertTransport } from '../adapters/udp.js';
import type { CoreState } from '../core/state.js';
import type { Event } from '../core/types.js';
import type { Metrics } from './metrics.js';
import type { Clock, RuntimeObserver } from './runtime.js';

export class MetricsObserver implements RuntimeObserver {
  private holdsVip: boolean | null = null;

  constructor(
    private readonly metrics: Metrics,
    private readonly transport: Pick<AdvertTransport, 'counters'>,
    private readonly priority: number,
    private readonly clock: Clock,
  ) {}

  stepped(before: CoreState, after: CoreState, event: Event): void {
    const now = this.clock.now();
    if (after.role !== before.role) this.metrics.transition(before.role, after.role);
    switch (event.type) {
      case 'health-checked':
        if (!event.ok) this.metrics.healthCheckFailed();
        break;
      case 'vip-observed':
        this.holdsVip = event.present;
        break;
      case 'promotion-finished':
        // From entering MASTER to a promoted Redis (the VIP claim follows at once).
        if (event.ok && after.role === 'MASTER' && before.redisOp === 'promoting') this.metrics.takeover(now - after.enteredAtMs);
        break;
      case 'redis-switchover-finished':
        this.metrics.switchover(event.outcome);
        break;
      default:
        break;
    }
    this.metrics.observe(after, now, { holdsVip: this.holdsVip, transport: this.transport.counters, priority: this.priority });
  }

  stalled(stalledMs: number): void {
    this.metrics.stall(stalledMs);
  }
}
