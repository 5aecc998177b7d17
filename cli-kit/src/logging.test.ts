import { PassThrough } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { LOG_LEVELS, componentLogger, createLogger } from './logging.js';

function sink(): { stream: PassThrough; text: () => string } {
  const stream = new PassThrough();
  let out = '';
  stream.on('data', (d) => (out += String(d)));
  return { stream, text: () => out };
}

const tick = (): Promise<void> => new Promise((r) => setImmediate(r));

describe('createLogger', () => {
  it('writes one JSON object per line when the destination is not a terminal', async () => {
    const s = sink();
    const log = createLogger({ destination: s.stream, isTTY: false, level: 'debug' });
    componentLogger(log, 'origin').debug({ bytes: 5 }, 'fetched');
    await tick();
    expect(JSON.parse(s.text().trim())).toMatchObject({ level: 20, component: 'origin', bytes: 5, msg: 'fetched' });
  });

  it('writes pretty text (not JSON) by default at a terminal, and JSON when asked', async () => {
    const tty = sink();
    componentLogger(createLogger({ destination: tty.stream, isTTY: true }), 'tracker').info({ relays: 2 }, 'listening');
    await tick();
    expect(tty.text()).toContain('[tracker] listening');
    expect(() => JSON.parse(tty.text().trim())).toThrow();
    const forced = sink();
    createLogger({ destination: forced.stream, isTTY: true, format: 'json' }).info('x');
    await tick();
    expect(JSON.parse(forced.text().trim())).toMatchObject({ msg: 'x' });
  });

  it('honours the level, and the list of levels ends with silent', async () => {
    const s = sink();
    const log = createLogger({ destination: s.stream, isTTY: false, level: 'warn' });
    log.info('hidden');
    log.warn('shown');
    await tick();
    expect(s.text()).not.toContain('hidden');
    expect(s.text()).toContain('shown');
    expect(LOG_LEVELS[LOG_LEVELS.length - 1]).toBe('silent');
  });

  it('makes one child per component', () => {
    const log = createLogger({ destination: sink().stream, isTTY: false });
    expect(componentLogger(log, 'a')).toBe(componentLogger(log, 'a'));
    expect(componentLogger(log, 'a')).not.toBe(componentLogger(log, 'b'));
  });
});
