import { describe, expect, it } from 'vitest';
import { classifyDatagram } from './datagram.js';

const hex = (s: string): Buffer => Buffer.from(s.replace(/\s+/g, ''), 'hex');

describe('classifyDatagram', () => {
  it.each<[string, string, string, number | undefined]>([
    ['empty', '', 'runt', undefined],
    ['one byte', '01', 'runt', undefined],
    ['truncated RRQ', '0001 6162', 'malformed-request', 4],
    ['RRQ without mode', '0001 61 00', 'malformed-request', 4],
    ['WRQ with a dangling option', '0002 61 00 6f63746574 00 78 00', 'malformed-request', 4],
    ['unknown opcode', '0009 0000', 'unknown-opcode', 4],
    ['malformed ACK', '0004 00', 'malformed', undefined],
    ['malformed ERROR is never answered', '0005 00', 'malformed', undefined],
  ])('%s → %s', (_name, bytes, reason, replyCode) => {
    const c = classifyDatagram(hex(bytes));
    expect(c).toMatchObject({ kind: 'drop', reason });
    if (c.kind === 'drop') expect(c.reply?.code).toBe(replyCode);
  });

  it('passes a valid packet through', () => {
    expect(classifyDatagram(hex('0004 0001'))).toEqual({ kind: 'packet', packet: { op: 'ack', block: 1 } });
  });
});
