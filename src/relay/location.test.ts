import { describe, expect, it } from 'vitest';
import { sameOriginReference } from './location.js';

describe('sameOriginReference', () => {
  it.each([
    ['/images/x', '/images/x'],
    ['/', '/'],
    ['//evil/x', '/evil/x'],
    ['////evil', '/evil'],
    ['/\\evil/x', '/evil/x'],
    ['\\\\evil/x', '/evil/x'],
    ['/\t/evil', '/evil'],
    [' //evil', '/evil'],
    ['/a//b', '/a//b'],
    ['relative/x', 'relative/x'],
    ['?a=1', '?a=1'],
    ['http://elsewhere/x', 'http://elsewhere/x'],
  ])('%j → %j', (ref, want) => {
    expect(sameOriginReference(ref)).toBe(want);
  });
});
