/** Just the surface of @peertube/bittorrent-tracker-server (untyped JS) the tracker worker uses. */
declare module '@peertube/bittorrent-tracker-server' {
  import type { EventEmitter } from 'node:events';
  import type { AddressInfo } from 'node:net';
  export class Server extends EventEmitter {
    constructor(opts: { udp?: boolean; http?: boolean; ws?: boolean; stats?: boolean; trustProxy?: boolean });
    ws: { address(): AddressInfo | string | null };
    listen(port: number, hostname: string, onListening: () => void): void;
    close(cb: () => void): void;
  }
}
