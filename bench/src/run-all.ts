/**
 * `npm run bench`: every bench in turn with its quick defaults, one after another (they share two
 * cores, so never in parallel). Each bench's JSON line goes to stdout as it finishes and is also
 * collected into bench/results/latest.json; summary lines and progress go to stderr. Extra flags
 * are not forwarded: run a bench alone (`npm run -w bench <name> -- --help`) to change its options.
 */
import { spawn } from 'node:child_process';
import { mkdir, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';

const BENCHES = ['relay-throughput', 'relay-origin', 'tracker', 'offload', 'receipt-verify', 'settlement', 'sdk-size', 'startup', 'setup'];
const RESULTS_DIR = new URL('../results/', import.meta.url);

function runOne(name: string): Promise<{ name: string; code: number | null; json: unknown; seconds: number }> {
  const t0 = performance.now();
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(new URL(`./${name}.ts`, import.meta.url))], {
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    let out = '';
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString();
      process.stdout.write(d);
    });
    child.once('exit', (code) => {
      let json: unknown;
      try {
        json = JSON.parse(out.trim().split('\n').pop() ?? '');
      } catch {
        json = undefined;
      }
      resolve({ name, code, json, seconds: (performance.now() - t0) / 1000 });
    });
  });
}

const results = [];
for (const name of BENCHES) {
  process.stderr.write(`\n=== ${name} ===\n`);
  results.push(await runOne(name));
}
await mkdir(RESULTS_DIR, { recursive: true });
await writeFile(
  new URL('latest.json', RESULTS_DIR),
  `${JSON.stringify(
    results.map((r) => r.json ?? { bench: r.name, failed: true }),
    null,
    2,
  )}\n`,
);
const failed = results.filter((r) => r.code !== 0);
process.stderr.write(
  `\nbench: ${results.length - failed.length}/${results.length} benches ran (${results.map((r) => `${r.name} ${Math.round(r.seconds)} s`).join(', ')})${failed.length === 0 ? '' : `; FAILED: ${failed.map((r) => r.name).join(', ')}`}\n`,
);
process.exitCode = failed.length === 0 ? 0 : 1;
