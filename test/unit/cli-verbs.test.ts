// The pure parts of the verbs clients call: update's sizes and resources, events' intervals.
import { describe, expect, test } from 'vitest';
import { parseBytes, resourcesFrom } from '../../src/cli/commands/update.js';
import { parseDuration } from '../../src/cli/commands/events.js';

describe('update', () => {
  test('sizes as runc takes them', () => {
    expect(parseBytes('1048576', '--memory')).toBe(1048576);
    expect(parseBytes('512k', '--memory')).toBe(512 * 1024);
    expect(parseBytes('100m', '--memory')).toBe(100 * 1024 ** 2);
    expect(parseBytes('1g', '--memory')).toBe(1024 ** 3);
    expect(parseBytes('-1', '--memory-swap')).toBe(-1);
    expect(() => parseBytes('10x', '--memory')).toThrow('--memory: "10x" is not a size');
  });

  test('single-value flags become linux.resources fields', () => {
    expect(
      resourcesFrom({
        memory: '64m',
        memorySwap: '-1',
        cpuQuota: '50000',
        cpuPeriod: '100000',
        pidsLimit: '100',
        cpusetCpus: '0-1',
        blkioWeight: '500',
      }),
    ).toEqual({
      memory: { limit: 64 * 1024 ** 2, swap: -1 },
      cpu: { quota: 50000, period: 100000, cpus: '0-1' },
      pids: { limit: 100 },
      blockIO: { weight: 500 },
    });
    expect(() => resourcesFrom({ pidsLimit: 'many' })).toThrow('--pids-limit: "many" is not an integer');
    expect(() => resourcesFrom({ l3CacheSchema: 'L3:0=f' })).toThrow('Intel RDT is not supported');
  });
});

describe('events', () => {
  test('Go durations', () => {
    expect(parseDuration('5s')).toBe(5000);
    expect(parseDuration('500ms')).toBe(500);
    expect(parseDuration('1m30s')).toBe(90_000);
    expect(() => parseDuration('5')).toThrow('--interval: "5" is not a duration');
    expect(() => parseDuration('0s')).toThrow('is not a duration');
  });
});
