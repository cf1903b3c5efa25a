import { describe, expect, it } from 'vitest';
import { madeFiles } from './made-files.js';
import type { Fetched } from './http-fetch.js';

describe('madeFiles: images held for TFTP clients', () => {
  function setup(keepBytes: number) {
    const fetched: string[] = [];
    const lookup = madeFiles({
      grub: undefined as never,
      imageBaseUrl: 'http://images',
      fetchImage: async (url): Promise<Fetched> => {
        fetched.push(url);
        return { kind: 'data', data: Buffer.alloc(60, 1) };
      },
      keepBytes,
      now: () => 0,
    });
    const get = async (name: string) => {
      const r = await lookup(name, '10.0.0.5');
      if (r?.kind !== 'file') throw new Error(`no file for ${name}`);
      return r.file;
    };
    return { fetched, get };
  }

  it('shares one fetch between the size probe and the transfer, within the byte budget', async () => {
    const s = setup(200);
    await s.get('images/a.kernel');
    await s.get('/images/a.kernel');
    expect(s.fetched).toEqual(['http://images/images/a.kernel']);
  });

  it('drops the oldest image when the budget is exceeded, and fetches it again when asked', async () => {
    const s = setup(100);
    const a = await s.get('images/a.kernel');
    expect(a.size).toBe(60);
    await s.get('images/b.initramfs');
    await s.get('images/a.kernel');
    expect(s.fetched).toEqual([
      'http://images/images/a.kernel',
      'http://images/images/b.initramfs',
      'http://images/images/a.kernel',
    ]);
  });
});
