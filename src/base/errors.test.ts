import { describe, expect, it } from 'vitest';
import { DecodeError, ERROR_CODES, MetalbootError, type ErrorCode } from './errors.js';

describe('error codes', () => {
  it.each(Object.keys(ERROR_CODES).map((c) => [c] as const))(
    '%s is <AREA>_ERR_<WHAT> and says what it means',
    (code) => {
      expect(code).toMatch(/^[A-Z][A-Z0-9]*(_[A-Z]+)?_ERR_[A-Z]+(_[A-Z]+)*$/);
      expect(ERROR_CODES[code as ErrorCode].length).toBeGreaterThan(10);
    },
  );

  it('a DecodeError is a MetalbootError with its offset in the message', () => {
    const e = new DecodeError('DHCP_ERR_SHORT', 12, 'too short');
    expect(e).toBeInstanceOf(MetalbootError);
    expect(e).toMatchObject({
      code: 'DHCP_ERR_SHORT',
      offset: 12,
      message: 'too short at offset 12',
      name: 'DecodeError',
    });
  });

  it('keeps the cause', () => {
    const cause = new Error('EADDRNOTAVAIL');
    expect(new MetalbootError('DHCP_ERR_BIND', 'cannot bind', { cause }).cause).toBe(cause);
  });
});
