import { createSocket } from 'node:dgram';

/**
 * The local address the kernel would use to reach `host`: the one a router must forward to and
 * the one an operator forwards a port to by hand. A UDP connect sends nothing; it only picks the
 * route and source address.
 */
export async function localAddressTowards(host: string): Promise<string> {
  const sock = createSocket('udp4');
  try {
    await new Promise<void>((resolve, reject) => {
      sock.once('error', reject);
      sock.connect(9, host, () => resolve());
    });
    return sock.address().address;
  } finally {
    sock.close();
  }
}
