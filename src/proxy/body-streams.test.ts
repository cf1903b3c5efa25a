import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { BodyBudget, readBounded } from './body-streams.js';

describe('BodyBudget', () => {
  it('lends bytes while they fit and takes back all of a share at once', () => {
    const b = new BodyBudget(100);
    const one = b.share();
    const two = b.share();
    expect(one.take(60)).toBe(true);
    expect(two.take(50)).toBe(false);
    expect(two.take(40)).toBe(true);
    expect(b.used).toBe(100);
    one.release();
    one.release();
    expect(b.used).toBe(40);
    expect(two.take(50)).toBe(true);
    expect(b.peak).toBe(100);
    two.release();
    expect(b.used).toBe(0);
    expect(two.take(1)).toBe(false);
  });

  it.each([0, -1, 1.5])('refuses a budget of %d', (max) => {
    expect(() => new BodyBudget(max)).toThrow(expect.objectContaining({ code: 'PROXY_ERR_BAD_OPTIONS' }));
  });
});

describe('readBounded', () => {
  it('reads a body within its share', async () => {
    const b = new BodyBudget(10);
    const share = b.share();
    const s = new PassThrough();
    const read = readBounded(s, 100, { share });
    s.end('12345');
    expect((await read).toString()).toBe('12345');
    expect(b.used).toBe(5);
  });

  it.each([
    ['past its bound', 4, 100, 'PROXY_ERR_BODY_TOO_LARGE'],
    ['past the budget', 100, 4, 'PROXY_ERR_BODY_BUDGET'],
  ])('stops %s', async (_name, max, budget, code) => {
    const s = new PassThrough();
    const read = readBounded(s, max, { share: new BodyBudget(budget).share() });
    s.write('12345');
    await expect(read).rejects.toMatchObject({ code });
    expect(s.isPaused()).toBe(true);
  });

  it('stops a body that does not arrive in time', async () => {
    const s = new PassThrough();
    const read = readBounded(s, 100, { timeoutMs: 20 });
    s.write('1');
    await expect(read).rejects.toMatchObject({ code: 'PROXY_ERR_BODY_TIMEOUT' });
  });
});
