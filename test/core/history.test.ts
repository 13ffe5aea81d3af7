/**
 * `compareHistories` (src/core/history.ts): does one Redis hold every write of another,
 * by replication ids and offsets (PSYNC2's replid, replid2, second_repl_offset).
 */
import { describe, expect, it } from 'vitest';
import { bytesPast, compareHistories, historyContains, historyText, resyncWouldDiscard, type History, type HistoryRelation } from '../../src/core/history.js';

const R1 = '1'.repeat(40);
const R2 = '2'.repeat(40);
const R3 = '3'.repeat(40);
const NONE = '0'.repeat(40);

/** A history on `replId` at `offset`, forked from `from` at offset `fork` (second_repl_offset fork + 1). */
function h(replId: string, offset: number, from?: string, fork?: number): History {
  return from === undefined ? { replId, replId2: NONE, offset, secondOffset: -1 } : { replId, replId2: from, offset, secondOffset: fork! + 1 };
}

const contains: HistoryRelation = { kind: 'contains' };
const unrelated: HistoryRelation = { kind: 'unrelated' };
const lacks = (bytes: number): HistoryRelation => ({ kind: 'lacks', bytes });

describe('compareHistories(x, y): how x stands to y', () => {
  const table: [string, History, History, HistoryRelation][] = [
    ['one history, x further on', h(R1, 500), h(R1, 400), contains],
    ['one history, same offset', h(R1, 500), h(R1, 500), contains],
    ['one history, y further on', h(R1, 400), h(R1, 500), lacks(100)],
    ['x promoted out of y, y stopped before the fork', h(R2, 900, R1, 500), h(R1, 450), contains],
    ['x promoted out of y, y stopped at the fork', h(R2, 900, R1, 500), h(R1, 500), contains],
    ['x promoted out of y, y wrote past the fork (a split brain, or an outrun catch-up)', h(R2, 900, R1, 500), h(R1, 530), lacks(30)],
    ['y promoted out of x and wrote on (the new master, seen from the old)', h(R1, 500), h(R2, 700, R1, 500), lacks(200)],
    ['y promoted out of x, wrote nothing yet, x at the fork', h(R1, 500), h(R2, 500, R1, 500), contains],
    ['y promoted out of x, wrote nothing yet, x behind the fork', h(R1, 450), h(R2, 500, R1, 500), lacks(50)],
    ['both forked from one history, y wrote nothing, x forked later', h(R2, 800, R1, 600), h(R3, 500, R1, 500), contains],
    ['both forked from one history, y wrote nothing, x forked earlier', h(R2, 800, R1, 400), h(R3, 500, R1, 500), lacks(100)],
    ['both forked from one history, y wrote on', h(R2, 800, R1, 600), h(R3, 520, R1, 500), lacks(20)],
    ['unrelated ids (a restart with a new replid)', h(R1, 5000), h(R2, 100), unrelated],
    ['unrelated ids, whatever the offsets', h(R1, 0), h(R2, 100), unrelated],
    ['an empty replid (no snapshot in the advert)', h('', 0), h(R1, 100), unrelated],
    ['replid2 without a second offset is no ancestor', { replId: R2, replId2: R1, offset: 900, secondOffset: -1 }, h(R1, 100), unrelated],
  ];
  it.each(table)('%s', (_name, x, y, expected) => {
    expect(compareHistories(x, y)).toEqual(expected);
    expect(historyContains(x, y)).toBe(expected.kind === 'contains');
  });

  it('a replid2 given as empty (hand-made adverts) is no ancestor either', () => {
    expect(compareHistories({ replId: R2, replId2: '', offset: 900, secondOffset: -1 }, h(R3, 10))).toEqual(unrelated);
  });

  it('says a history in a few characters', () => {
    expect(historyText(h(R2, 900, R1, 500))).toBe('22222222@900 (from 11111111@500)');
    expect(historyText(h(R1, 7))).toBe('11111111@7');
  });
});

describe('resyncWouldDiscard(source, local, following): would following source lose local writes?', () => {
  const table: [string, History, History, boolean, boolean][] = [
    ['source holds local', h(R1, 500), h(R1, 400), false, false],
    ['source lacks local bytes (one history)', h(R1, 400), h(R1, 500), false, true],
    ['source lacks local bytes, even when already following it', h(R1, 400), h(R1, 500), true, true],
    ['local promoted out of source and wrote on (finding 8 with linked ids)', h(R1, 500), h(R2, 700, R1, 500), false, true],
    ['unlinked, local counts more bytes (finding 8: a peer restarted with older data)', h(R2, 400), h(R1, 900), false, true],
    ['unlinked, source counts more bytes', h(R2, 900), h(R1, 400), false, false],
    ['unlinked, same count (two fresh masters)', h(R2, 0), h(R1, 0), false, false],
    ['unlinked but already following: Redis resyncs anyway', h(R2, 400), h(R1, 900), true, false],
  ];
  it.each(table)('%s', (_name, source, local, following, discards) => {
    expect(resyncWouldDiscard(source, local, following) !== null).toBe(discards);
  });
});

describe('bytesPast(x, y): what x wrote after it grew out of y\'s history, y not past that point', () => {
  const table: [string, History, History, number][] = [
    ['x promoted out of y where y stands, and wrote on', h(R2, 700, R1, 500), h(R1, 500), 200],
    ['y behind the fork (a stale offset, or y stopped earlier)', h(R2, 700, R1, 500), h(R1, 450), 200],
    ['x wrote nothing of its own yet', h(R2, 500, R1, 500), h(R1, 450), 0],
    ['y went past the fork: diverged, not older', h(R2, 700, R1, 500), h(R1, 520), 0],
    ['one history: not counted (x\'s further offset may be y\'s stale one)', h(R1, 700), h(R1, 500), 0],
    ['y grew out of x: the other way round', h(R1, 500), h(R2, 700, R1, 500), 0],
    ['unrelated', h(R2, 700), h(R1, 500), 0],
  ];
  it.each(table)('%s', (_name, x, y, bytes) => {
    expect(bytesPast(x, y)).toBe(bytes);
  });
});
