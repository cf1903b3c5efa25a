import { spawnSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import {
  ANSWER_ONLY,
  interfaceNameProblem,
  minIntervalFor,
  type RadvdInterfaceConfig,
  radvdArgs,
  renderRadvdConfig,
} from './radvd-config.js';

const answerOnly = (o: Partial<RadvdInterfaceConfig> = {}): RadvdInterfaceConfig => ({
  ...ANSWER_ONLY,
  interface: 'eth1',
  maxIntervalSeconds: 600,
  ...o,
});

/** The statements of the interface block, `Name value`, without the trailing ';'. */
function statements(conf: string): string[] {
  return conf
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l.endsWith(';') && !l.startsWith('};'))
    .map((l) => l.slice(0, -1));
}

describe('renderRadvdConfig', () => {
  it('answer-only: lifetime 0, M=O=0, no prefix, unspecified hop limit and timers, RFC 4861 intervals', () => {
    const conf = renderRadvdConfig(answerOnly());
    expect(conf).toMatch(/^# Written by metalboot/);
    expect(conf).toContain('\ninterface eth1\n{\n');
    expect(statements(conf)).toEqual([
      'AdvSendAdvert on',
      'MaxRtrAdvInterval 600',
      'MinRtrAdvInterval 198',
      'AdvDefaultLifetime 0',
      'AdvDefaultPreference medium',
      'AdvManagedFlag off',
      'AdvOtherConfigFlag off',
      'AdvCurHopLimit 0',
      'AdvReachableTime 0',
      'AdvRetransTimer 0',
      'AdvLinkMTU 0',
      'AdvSourceLLAddress on',
      'AdvRASolicitedUnicast on',
    ]);
    expect(conf).not.toContain('prefix');
    expect(conf.endsWith('};\n')).toBe(true);
  });

  it.each([
    [4, 3],
    [9, 3],
    [10, 3.3],
    [600, 198],
    [1800, 594],
  ])('MaxRtrAdvInterval %i → MinRtrAdvInterval %f (0.33 × Max, at least 3, at most 0.75 × Max)', (max, min) => {
    expect(minIntervalFor(max)).toBe(min);
    expect(min).toBeLessThanOrEqual(0.75 * max);
    expect(statements(renderRadvdConfig(answerOnly({ maxIntervalSeconds: max })))).toContain(
      `MinRtrAdvInterval ${min}`,
    );
  });

  it('IPv6 provisioning later: prefixes, the Managed and Other flags and a router lifetime', () => {
    const conf = renderRadvdConfig(
      answerOnly({
        routerLifetimeSeconds: 1800,
        managed: true,
        other: true,
        prefixes: [
          {
            prefix: '2001:DB8:1:0:1::/64',
            onLink: true,
            autonomous: false,
            validLifetimeSeconds: 86400,
            preferredLifetimeSeconds: 14400,
          },
        ],
      }),
    );
    const s = statements(conf);
    expect(s).toContain('AdvDefaultLifetime 1800');
    expect(s).toContain('AdvManagedFlag on');
    expect(s).toContain('AdvOtherConfigFlag on');
    // The network address, in canonical form.
    expect(conf).toContain('\n    prefix 2001:db8:1::/64\n    {\n');
    expect(s.slice(-4)).toEqual([
      'AdvOnLink on',
      'AdvAutonomous off',
      'AdvValidLifetime 86400',
      'AdvPreferredLifetime 14400',
    ]);
  });

  it.each([
    ['an interface name radvd would misread', answerOnly({ interface: 'eth 1' }), /not 1-15 of/],
    ['a keyword as interface name', answerOnly({ interface: 'prefix' }), /radvd.conf keyword/],
    ['a numeric interface name', answerOnly({ interface: '123' }), /read as a number/],
    [
      'MaxRtrAdvInterval under 4',
      answerOnly({ maxIntervalSeconds: 3 }),
      /MaxRtrAdvInterval 3 is not between 4 and 1800/,
    ],
    ['MaxRtrAdvInterval over 1800', answerOnly({ maxIntervalSeconds: 1801 }), /not between/],
    ['a router lifetime under MaxRtrAdvInterval', answerOnly({ routerLifetimeSeconds: 100 }), /neither 0 nor/],
    ['a router lifetime over 9000', answerOnly({ routerLifetimeSeconds: 9001 }), /neither 0 nor/],
    [
      'an IPv4 prefix',
      answerOnly({
        prefixes: [
          {
            prefix: '10.0.0.0/8',
            onLink: true,
            autonomous: true,
            validLifetimeSeconds: 1,
            preferredLifetimeSeconds: 1,
          },
        ],
      }),
      /is not IPv6/,
    ],
    [
      'a preferred lifetime over the valid one',
      answerOnly({
        prefixes: [
          {
            prefix: 'fd00::/64',
            onLink: true,
            autonomous: true,
            validLifetimeSeconds: 10,
            preferredLifetimeSeconds: 20,
          },
        ],
      }),
      /preferred lifetime 20 is over the valid 10/,
    ],
    [
      'one prefix twice',
      answerOnly({
        prefixes: [
          { prefix: 'fd00::/64', onLink: true, autonomous: true, validLifetimeSeconds: 1, preferredLifetimeSeconds: 1 },
          {
            prefix: 'fd00::1/64',
            onLink: true,
            autonomous: true,
            validLifetimeSeconds: 1,
            preferredLifetimeSeconds: 1,
          },
        ],
      }),
      /fd00::\/64 is listed twice/,
    ],
  ])('refuses %s (RA_ERR_CONFIG)', (_what, config, message) => {
    expect(() => renderRadvdConfig(config)).toThrow(
      expect.objectContaining({ code: 'RA_ERR_CONFIG', message: expect.stringMatching(message) }),
    );
  });

  it.each([['eth0'], ['net1'], ['br-prov.100'], ['enp0s31f6'], ['veth_a-b']])('takes %s', (name) => {
    expect(interfaceNameProblem(name)).toBeUndefined();
  });

  // radvd's own parser: catches a statement radvd does not know or a value it will not take.
  const radvd = ['/usr/sbin/radvd', '/usr/bin/radvd'].find((p) => existsSync(p));
  it.runIf(radvd !== undefined || process.env.CI === 'true')('radvd --configtest accepts what it renders', () => {
    expect(radvd, 'radvd is not installed (Debian package radvd)').toBeDefined();
    const dir = mkdtempSync(path.join(tmpdir(), 'metalboot-radvd-conf-'));
    try {
      const configs = [
        answerOnly(),
        answerOnly({ maxIntervalSeconds: 4 }),
        answerOnly({
          routerLifetimeSeconds: 1800,
          managed: true,
          prefixes: [
            {
              prefix: 'fd00:1::/64',
              onLink: true,
              autonomous: true,
              validLifetimeSeconds: 86400,
              preferredLifetimeSeconds: 0,
            },
          ],
        }),
      ];
      for (const c of configs) {
        const file = path.join(dir, 'radvd.conf');
        writeFileSync(file, renderRadvdConfig(c), { mode: 0o600 });
        const r = spawnSync(radvd!, ['--configtest', '-m', 'stderr_clean', '-C', file], {
          encoding: 'utf8',
          timeout: 10_000,
        });
        expect(r.status, r.stderr).toBe(0);
        expect(r.stderr).toContain('syntax ok');
      }
      // And it can fail: a statement radvd does not know.
      const bad = path.join(dir, 'bad.conf');
      writeFileSync(bad, renderRadvdConfig(answerOnly()).replace('AdvSendAdvert on;', 'AdvSendAdvert sometimes;'), {
        mode: 0o600,
      });
      expect(spawnSync(radvd!, ['--configtest', '-m', 'stderr_clean', '-C', bad], { timeout: 10_000 }).status).not.toBe(
        0,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe('radvdArgs', () => {
  it('foreground, its own configuration and pidfile, every message to stderr without timestamps', () => {
    expect(radvdArgs({ configPath: '/run/x/radvd.conf', pidPath: '/run/x/radvd.pid' })).toEqual([
      '-n',
      '-d',
      '5',
      '-m',
      'stderr_clean',
      '-C',
      '/run/x/radvd.conf',
      '-p',
      '/run/x/radvd.pid',
    ]);
  });
});
