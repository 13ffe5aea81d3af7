/**
 * Carries out a step's actions in the order the core emitted them. Two kinds:
 *
 *  - effects (state file, Redis, VIP, exit) change the world and take time. They run one
 *    at a time on a single lane, across steps, in emission order: "persist the new
 *    epoch, then promote" and "release the VIP, then demote" hold even when a later step
 *    comes in while an earlier effect still runs.
 *  - notices (adverts, peer messages, replies, audit records) only tell. One runs as soon
 *    as the effects emitted before it *in the same step* are done: so a step's advert
 *    never goes out ahead of the effect it reports, but an advert tick is never held up
 *    behind an earlier step's long effect (a switchover takes seconds; the peer must
 *    keep hearing us). An advert that waited and was overtaken by a newer one is
 *    dropped, so the peer never hears an older state after a newer one.
 *
 * When an effect throws, the rest of its step (effects and notices) is not run: the
 * runner hands the failure and the skipped actions to `failed`, which the runtime turns
 * into an `effect-failed` event, and the core decides what still has to happen. Before
 * an effect starts, the core is asked whether it is still wanted (`stillWanted`).
 */
import type { Action } from '../core/types.js';

/**
 * Actions that only tell, or only ask; everything else is an effect. Asking etcd for the
 * key (`acquire-quorum`) changes nothing here and may take a call timeout: on the lane it
 * would hold up a fence or a VIP release behind it, so it runs beside it, its answer
 * coming back as an event.
 */
export type Notice = Extract<Action, { type: 'send-advert' | 'send-message' | 'reply' | 'audit' | 'acquire-quorum' | 'mark-quorum' }>;
export type Effect = Exclude<Action, Notice>;

const NOTICES: ReadonlySet<Action['type']> = new Set<Action['type']>(['send-advert', 'send-message', 'reply', 'audit', 'acquire-quorum', 'mark-quorum']);

function isNotice(action: Action): action is Notice {
  return NOTICES.has(action.type);
}

export interface EffectHandlers {
  /** Runs one effect; rejects when it failed. */
  effect(action: Effect): Promise<void>;
  /** Sends one notice; must not throw. */
  notice(action: Notice): void;
  /** The core's word on whether a queued effect is still wanted now. */
  stillWanted(action: Effect): boolean;
  /** An effect threw; `skipped` are the later actions of its step, not run. */
  failed(action: Effect, error: unknown, skipped: readonly Action[]): void;
  /** An effect was dropped because the core no longer wanted it. */
  dropped(action: Effect): void;
}

export class EffectRunner {
  private lane: Promise<unknown> = Promise.resolve();
  private inFlight = 0;
  private advertsEmitted = 0;
  private lastAdvertSent = 0;
  private halted = false;

  constructor(private readonly handlers: EffectHandlers) {}

  /** Effects queued or running (the reconcile loop does not compare while one is). */
  get pending(): number {
    return this.inFlight;
  }

  /** Nothing more is run after this (the daemon stopped or detached). */
  halt(): void {
    this.halted = true;
  }

  /** Runs one step's actions; resolves when all of them ran (or were skipped). */
  run(actions: readonly Action[]): Promise<void> {
    // `gate` resolves true once the step's effects so far succeeded; null: none yet.
    let gate: Promise<boolean> | null = null;
    const all: Promise<unknown>[] = [];
    actions.forEach((action, index) => {
      if (isNotice(action)) {
        const advertNo = action.type === 'send-advert' ? ++this.advertsEmitted : 0;
        if (gate === null) this.send(action, advertNo);
        else all.push(gate.then((ok) => { if (ok) this.send(action, advertNo); }));
        return;
      }
      const before: Promise<boolean> = gate ?? Promise.resolve(true);
      this.inFlight++;
      const mine: Promise<boolean> = this.lane.then(() => before).then(async (ok) => {
        try {
          if (!ok || this.halted) return false;
          if (!this.handlers.stillWanted(action)) {
            this.handlers.dropped(action);
            return true;
          }
          await this.handlers.effect(action);
          return true;
        } catch (error) {
          if (!this.halted) this.handlers.failed(action, error, actions.slice(index + 1));
          return false;
        } finally {
          this.inFlight--;
        }
      });
      this.lane = mine;
      gate = mine;
      all.push(mine);
    });
    return Promise.all(all).then(() => undefined);
  }

  private send(action: Notice, advertNo: number): void {
    if (this.halted) return;
    if (action.type === 'send-advert') {
      if (advertNo < this.lastAdvertSent) return;
      this.lastAdvertSent = advertNo;
    }
    this.handlers.notice(action);
  }
}
