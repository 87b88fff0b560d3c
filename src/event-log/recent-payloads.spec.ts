import { describe, expect, it } from '@jest/globals';
import { RecentPayloads } from './recent-payloads.js';

const payload = (n: number) => ({ data: { object: { id: `cus_${n}` } } });

describe('RecentPayloads', () => {
  it('forgets the oldest payloads once their bodies exceed its bytes', () => {
    const recent = new RecentPayloads(1000);
    for (let position = 1; position <= 4; position++) recent.remember(position, payload(position), 300);
    expect(recent.size).toBe(3);
    expect(recent.at(1)).toBeUndefined();
    expect([2, 3, 4].map((position) => recent.at(position))).toEqual([payload(2), payload(3), payload(4)]);
    recent.remember(5, payload(5), 700);
    expect([2, 3, 4, 5].map((position) => recent.at(position) !== undefined)).toEqual([
      false,
      false,
      true,
      true,
    ]);
  });

  it('keeps no payload larger than all of its room, and forgets nothing for one', () => {
    const recent = new RecentPayloads(1000);
    recent.remember(1, payload(1), 400);
    recent.remember(2, payload(2), 1001);
    expect(recent.at(2)).toBeUndefined();
    expect(recent.at(1)).toEqual(payload(1));
  });
});
