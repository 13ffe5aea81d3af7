/**
 * A request from the peer daemon (already authenticated and replay-checked by the
 * transport) as the core event it stands for. Used by the daemon's wiring and by the
 * simulation, which carries peer messages over the same wire path.
 */
import type { Event } from '../core/types.js';
import type { ReceivedMessage } from '../proto/message.js';

export function peerEvent(received: ReceivedMessage): Event {
  const m = received.message;
  switch (m.kind) {
    case 'switchover-request':
      return {
        type: 'switchover-requested', requestId: m.requestId, timeoutMs: m.timeoutMs, force: m.force,
        user: `${m.user} on ${received.nodeName}`, origin: 'peer',
      };
    case 'switchover-result':
      return { type: 'switchover-result-received', requestId: m.requestId, ok: m.ok, detail: m.detail };
    case 'handover':
      return { type: 'handover-received', requestId: m.requestId, epoch: m.epoch, force: m.force, from: received.nodeName };
    case 'advert-request':
      return { type: 'advert-requested', from: received.nodeName };
  }
}
