// The public API of @relaycast/player-sdk and @relaycast/protocol, recorded by API Extractor from the
// built declarations (dist/*.d.ts; `npm run build:packages` writes them) into api-reports/*.api.md.
//
//   npm run api-report            locally: rewrites any report that differs and says which
//   CI=true npm run api-report    in CI (or `npm run api-report -- --check`): fails on a report that
//                                 differs, naming it and showing the difference; writes nothing
//
// A report that changes is an API change: review it in the diff and commit it with the code.
// The configs are built here rather than in one api-extractor.json per entry point.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { CompilerState, Extractor, ExtractorConfig, ExtractorLogLevel, type ExtractorMessage, type IConfigFile } from '@microsoft/api-extractor';

const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
/** Where the checked-in reports live. */
export const REPORT_FOLDER = join(REPO_ROOT, 'api-reports');

/** One public entry point: a package folder and one subpath of its `exports`. */
export interface ApiEntry {
  /** Report file name without `.api.md`. */
  report: string;
  /** The package folder (absolute, or relative to the repository root). Its package.json `exports` names the declarations. */
  packageDir: string;
  /** The `exports` subpath, e.g. `.` or `./hls`. */
  subpath: string;
  /** Members (fields, methods) need TSDoc too, not only the exported declarations. */
  documentMembers?: boolean;
}

/** The entry points whose API is recorded; the testing kits are left out on purpose. */
export const API_ENTRIES: readonly ApiEntry[] = [
  // What platforms program against: every member documented as well.
  { report: 'player-sdk', packageDir: 'player-sdk', subpath: '.', documentMembers: true },
  { report: 'player-sdk-hls', packageDir: 'player-sdk', subpath: './hls', documentMembers: true },
  { report: 'protocol', packageDir: 'protocol', subpath: '.' },
  { report: 'protocol-node', packageDir: 'protocol', subpath: './node' },
  { report: 'protocol-settlement', packageDir: 'protocol', subpath: './settlement' },
];

/** What one entry point's run found. */
export interface ApiReportResult {
  entry: ApiEntry;
  /** The package name and subpath, e.g. `@relaycast/player-sdk ./hls`. */
  name: string;
  /** The checked-in report, relative to the repository root when it is inside it. */
  reportFile: string;
  /** The built API differs from the checked-in report (or there is none). */
  changed: boolean;
  /** Update mode wrote the report. */
  updated: boolean;
  /** API Extractor errors (forgotten exports, TSDoc syntax, compiler errors): each fails the run. */
  problems: string[];
  /** In check mode, the difference between the checked-in report and the built API. */
  diff: string | undefined;
}

export interface ApiReportOptions {
  /** `check` never writes a report; `update` rewrites the ones that differ. */
  mode: 'check' | 'update';
  entries?: readonly ApiEntry[];
  /** Defaults to {@link REPORT_FOLDER}. */
  reportFolder?: string;
}

// Every message API Extractor keeps is an error; the ones turned off would be noise for this codebase.
const ERROR = { logLevel: ExtractorLogLevel.Error, addToApiReportFile: false };
const OFF = { logLevel: ExtractorLogLevel.None, addToApiReportFile: false };
const MESSAGES: IConfigFile['messages'] = {
  compilerMessageReporting: { default: ERROR },
  extractorMessageReporting: {
    default: ERROR,
    // Release tags (@public/@beta/...) are not used: everything an entry point exports is public.
    'ae-missing-release-tag': OFF,
    // Off by default in API Extractor. On here: for exported declarations, and for members where the entry says so.
    'ae-undocumented': ERROR,
  },
  tsdocMessageReporting: { default: ERROR },
};

interface PackageJson {
  name: string;
  exports: Record<string, string | Record<string, string>>;
}

function typesOf(pkg: PackageJson, subpath: string, packageDir: string): string {
  const target = pkg.exports[subpath];
  const types = typeof target === 'object' ? target.types : undefined;
  if (types === undefined) throw new Error(`${pkg.name}: exports["${subpath}"] has no "types" condition`);
  return resolve(packageDir, types);
}

// Every exported declaration needs a TSDoc comment; its members (an interface's fields, a class's
// methods) may go without one where name and type say it all, unless the entry says otherwise.
// Declarations tsc emits are indented exactly when they are members, so the message's line tells.
function isMemberUndocumented(message: ExtractorMessage): boolean {
  if (message.messageId !== 'ae-undocumented' || message.sourceFilePath === undefined || message.sourceFileLine === undefined) return false;
  const line = readFileSync(message.sourceFilePath, 'utf8').split('\n')[message.sourceFileLine - 1] ?? '';
  return /^\s/.test(line);
}

// API Extractor sees one entry point at a time, so a subpath's function that takes a type the
// package's main entry exports (`signReceipt(receipt: Receipt)` in ./node, with Receipt from `.`)
// counts as a forgotten export. A consumer can import that type, so it is not one.
function isExportedByMain(message: ExtractorMessage, mainExports: ReadonlySet<string>): boolean {
  if (message.messageId !== 'ae-forgotten-export') return false;
  const name = /^The symbol "([^"]+)"/.exec(message.text)?.[1];
  return name !== undefined && mainExports.has(name);
}

// The compiler state's program is API Extractor's own TypeScript's, typed `unknown`: the few calls needed.
interface ProgramLike {
  getSourceFile(fileName: string): object | undefined;
  getTypeChecker(): { getSymbolAtLocation(node: object): object | undefined; getExportsOfModule(module: object): { name: string }[] };
}

function exportedNames(compilerState: CompilerState, entryFile: string): Set<string> {
  const program = compilerState.program as ProgramLike;
  const sourceFile = program.getSourceFile(entryFile);
  const checker = program.getTypeChecker();
  const module = sourceFile === undefined ? undefined : checker.getSymbolAtLocation(sourceFile);
  if (module === undefined) throw new Error(`api-report: ${entryFile} is not in the program`);
  return new Set(checker.getExportsOfModule(module).map((s) => s.name));
}

function displayPath(path: string): string {
  const rel = relative(REPO_ROOT, path);
  return rel.startsWith('..') ? path : rel;
}

/** Runs API Extractor on each entry point's built declarations and compares (or rewrites) its report. */
export function runApiReports(options: ApiReportOptions): ApiReportResult[] {
  const entries = options.entries ?? API_ENTRIES;
  const reportFolder = options.reportFolder ?? REPORT_FOLDER;
  const tempFolder = mkdtempSync(join(tmpdir(), 'relaycast-api-report-'));
  const compilerStates = new Map<string, CompilerState>();
  try {
    return entries.map((entry) => {
      const packageDir = resolve(REPO_ROOT, entry.packageDir);
      const packageJsonFullPath = join(packageDir, 'package.json');
      const pkg = JSON.parse(readFileSync(packageJsonFullPath, 'utf8')) as PackageJson;
      // The main entry is always in the program: forgotten exports of a subpath are looked up there.
      const subpaths = ['.', ...entries.filter((e) => resolve(REPO_ROOT, e.packageDir) === packageDir).map((e) => e.subpath)];
      const entryPoints = [...new Set(subpaths.map((subpath) => typesOf(pkg, subpath, packageDir)))];
      const mainEntryPointFilePath = typesOf(pkg, entry.subpath, packageDir);
      const config = ExtractorConfig.prepare({
        configObject: {
          projectFolder: packageDir,
          mainEntryPointFilePath,
          compiler: {
            overrideTsconfig: {
              compilerOptions: {
                target: 'ES2022',
                lib: ['ES2023', 'DOM', 'DOM.Iterable'],
                module: 'NodeNext',
                moduleResolution: 'NodeNext',
                strict: true,
                types: ['node'],
                typeRoots: [join(REPO_ROOT, 'node_modules', '@types')],
                // The declarations come from `tsc -b`, which type-checked their sources; checking every .d.ts
                // again (DOM, node, hls.js included) would only triple the run time.
                skipLibCheck: true,
              },
              files: entryPoints,
            },
          },
          apiReport: {
            enabled: true,
            reportFileName: entry.report,
            reportFolder,
            reportTempFolder: tempFolder,
          },
          docModel: { enabled: false },
          dtsRollup: { enabled: false },
          tsdocMetadata: { enabled: false },
          messages: MESSAGES,
        },
        configObjectFullPath: undefined,
        packageJsonFullPath,
      });
      // One TypeScript program per package serves all its entry points.
      let compilerState = compilerStates.get(packageDir);
      if (compilerState === undefined) {
        compilerState = CompilerState.create(config, { additionalEntryPoints: entryPoints });
        compilerStates.set(packageDir, compilerState);
      }
      const mainExports = entry.subpath === '.' ? new Set<string>() : exportedNames(compilerState, typesOf(pkg, '.', packageDir));
      const problems: string[] = [];
      let diff: string | undefined;
      const result = Extractor.invoke(config, {
        localBuild: options.mode === 'update',
        compilerState,
        printApiReportDiff: options.mode === 'check',
        messageCallback: (message: ExtractorMessage) => {
          message.handled = true;
          if (message.messageId === 'console-api-report-diff') diff = message.text;
          else if (
            message.logLevel === ExtractorLogLevel.Error &&
            !(entry.documentMembers !== true && isMemberUndocumented(message)) &&
            !isExportedByMain(message, mainExports)
          ) {
            problems.push(message.formatMessageWithLocation(REPO_ROOT));
          }
        },
      });
      return {
        entry,
        name: `${pkg.name} ${entry.subpath}`,
        reportFile: displayPath(join(reportFolder, `${entry.report}.api.md`)),
        changed: result.apiReportChanged,
        updated: result.apiReportChanged && options.mode === 'update',
        problems,
        diff,
      };
    });
  } finally {
    rmSync(tempFolder, { recursive: true, force: true });
  }
}

/** What a run tells the developer: lines for stdout and stderr, and whether it fails. */
export interface ApiReportOutcome {
  out: string[];
  err: string[];
  failed: boolean;
}

/** Turns results into the runner's messages; in check mode a changed report fails, naming the file and the fix. */
export function summarize(results: readonly ApiReportResult[], mode: ApiReportOptions['mode']): ApiReportOutcome {
  const outcome: ApiReportOutcome = { out: [], err: [], failed: false };
  for (const r of results) {
    for (const problem of r.problems) {
      outcome.failed = true;
      outcome.err.push(`api-report: ${r.name}: ${problem}`);
    }
    if (r.changed && mode === 'check') {
      outcome.failed = true;
      outcome.err.push(
        `api-report: ${r.reportFile} does not match the public API of ${r.name} (its built declarations).\n` +
          (r.diff !== undefined ? `${r.diff}\n` : '') +
          `If the change is intended, run \`npm run api-report\` locally (after \`npm run build:packages\`) and commit ${r.reportFile}.`,
      );
    } else if (r.updated) {
      outcome.out.push(`api-report: ${r.name}: the public API changed; updated ${r.reportFile}. Review it and commit it with the change.`);
    } else if (!r.changed) {
      outcome.out.push(`api-report: ${r.name}: ${r.reportFile} is up to date.`);
    }
  }
  return outcome;
}

function main(): void {
  const ci = !['', '0', 'false'].includes(process.env.CI ?? '');
  const mode = ci || process.argv.includes('--check') ? 'check' : 'update';
  const outcome = summarize(runApiReports({ mode }), mode);
  for (const line of outcome.out) process.stdout.write(`${line}\n`);
  for (const line of outcome.err) process.stderr.write(`${line}\n`);
  if (outcome.failed) process.exitCode = 1;
}

if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) main();
