import { describe, expect, it } from 'vitest';
import { formatListenAddress, parseListenAddress, withBoundPort } from './listen-address.js';

describe('parseListenAddress', () => {
  it.each([
    ['0.0.0.0:67', { host: '0.0.0.0', port: 67 }],
    [':8080', { host: '0.0.0.0', port: 8080 }],
    ['127.0.0.1:0', { host: '127.0.0.1', port: 0 }],
    ['[::]:547', { host: '::', port: 547 }],
    ['[FD00:0::1]:69', { host: 'fd00::1', port: 69 }],
  ])('%s', (text, want) => {
    expect(parseListenAddress(text)).toEqual(want);
    expect(formatListenAddress(want)).toBe(
      text.startsWith(':') ? `0.0.0.0${text}` : text.toLowerCase().replace('0::', ':'),
    );
  });

  it.each(['::1:547', '[10.0.0.1]:69', '[fe80::1%eth0]:547', '[::]:70000', 'host:80'])('refuses %s', (text) => {
    expect(parseListenAddress(text)).toBeUndefined();
  });
});

describe('withBoundPort', () => {
  it.each([
    ['http://172.22.0.2:0', 'http://172.22.0.2:41000'],
    ['http://172.22.0.2:0/base', 'http://172.22.0.2:41000/base'],
    ['https://metalboot.example:0/', 'https://metalboot.example:41000/'],
    ['http://[fd00::2]:0/x', 'http://[fd00::2]:41000/x'],
    ['http://172.22.0.2:8080', 'http://172.22.0.2:8080'],
    ['http://172.22.0.2', 'http://172.22.0.2'],
    ['http://172.22.0.2:80/p:0', 'http://172.22.0.2:80/p:0'],
    ['not a url', 'not a url'],
  ])('%s → %s', (url, want) => {
    expect(withBoundPort(url, 41000)).toBe(want);
  });
});
