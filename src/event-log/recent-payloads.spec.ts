import { describe, expect, it } from '@jest/globals';
import { RecentPayloads } from './recent-payloads.js';

/** A body of exactly `bytes` characters. */
const body = (n: number, bytes: number) => {
  const text = JSON.stringify({ data: { object: { id: `cus_${n}` } }, pad: '' });
  return text.replace('"pad":""', `"pad":"${'x'.repeat(bytes - text.length)}"`);
};

describe('RecentPayloads', () => {
  it('forgets the oldest payloads once their bodies exceed its bytes', () => {
    const recent = new RecentPayloads(1000);
    for (let position = 1; position <= 4; position++) recent.remember(position, body(position, 300));
    expect(recent.size).toBe(3);
    expect(recent.at(1)).toBeUndefined();
    expect(recent.at(3)).toEqual(JSON.parse(body(3, 300)));
    recent.remember(5, body(5, 700));
    expect([2, 3, 4, 5].map((position) => recent.at(position) !== undefined)).toEqual([
      false,
      false,
      true,
      true,
    ]);
  });

  it('keeps no payload larger than all of its room, and forgets nothing for one', () => {
    const recent = new RecentPayloads(1000);
    recent.remember(1, body(1, 400));
    recent.remember(2, body(2, 1001));
    expect(recent.at(2)).toBeUndefined();
    expect(recent.at(1)).toEqual(JSON.parse(body(1, 400)));
  });
});
