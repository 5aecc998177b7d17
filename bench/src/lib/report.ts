import { arch, cpus, release, totalmem } from 'node:os';

/** Where a result was measured: the figures mean nothing without it. */
export function machineInfo(): Record<string, string | number> {
  const cpu = cpus();
  return {
    node: process.version,
    platform: `${process.platform} ${release()} ${arch()}`,
    cpus: cpu.length,
    cpuModel: cpu[0]?.model ?? 'unknown',
    memGiB: Math.round(totalmem() / 2 ** 30),
  };
}

/**
 * Prints a bench's result the way every bench does: one JSON object on stdout (one line, for
 * machines) and one summary line on stderr (for people).
 */
export function report(bench: string, result: Record<string, unknown>, summary: string): void {
  process.stdout.write(`${JSON.stringify({ bench, date: new Date().toISOString(), machine: machineInfo(), ...result })}\n`);
  process.stderr.write(`${bench}: ${summary}\n`);
}

/** Progress lines go to stderr so stdout stays one JSON object. */
export function progress(bench: string, message: string): void {
  process.stderr.write(`[${bench}] ${message}\n`);
}

/**
 * Ends a bench once its result is out. node-datachannel keeps native threads (and the process)
 * alive after its peer connections close, so a bench that viewed over WebRTC would not exit.
 */
export function exitBench(): never {
  process.exit(process.exitCode ?? 0);
}
