import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { defaultGatewayIpv4 } from './pmp-gateway.js';

describe('defaultGatewayIpv4', () => {
  it('reads the default route from a /proc/net/route table (little-endian hex)', async () => {
    const dir = await mkdtemp(join(tmpdir(), 'rc-route-'));
    try {
      const file = join(dir, 'route');
      await writeFile(
        file,
        'Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n' +
          'eth0\t0001C70A\t00000000\t0001\t0\t0\t0\t00FFFFFF\t0\t0\t0\n' +
          'eth0\t00000000\t0101C70A\t0003\t0\t0\t0\t00000000\t0\t0\t0\n',
      );
      expect(await defaultGatewayIpv4(file)).toBe('10.199.1.1');
      await writeFile(file, 'Iface\tDestination\tGateway\n');
      expect(await defaultGatewayIpv4(file)).toBeUndefined();
      expect(await defaultGatewayIpv4(join(dir, 'missing'))).toBeUndefined();
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
