import { describe, expect, it } from 'vitest';
import { dockerfileEnv } from './dockerfile-env.js';

describe('dockerfileEnv', () => {
  it('reads the ENV KEY=VALUE lines of the final image and nothing else', () => {
    const dockerfile = [
      'FROM node:24 AS build',
      'RUN npm ci',
      'ENV NODE_ENV=production',
      '# ENV COMMENTED=1',
      'ENV MALLOC_TRIM_THRESHOLD_=134217728',
      'USER 1000:1000',
    ].join('\n');
    expect(dockerfileEnv(dockerfile)).toEqual({ NODE_ENV: 'production', MALLOC_TRIM_THRESHOLD_: '134217728' });
  });
});
