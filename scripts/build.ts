// Bundles the CLI and the Fargate worker into one ESM file each, so they start without compiling
// TypeScript and run without node_modules. The Dockerfile and `npm run build` both use this.
//
//   tsx scripts/build.ts [--outdir DIR] [ecr-backup|worker|drill ...]
//
// With no names it builds all three into dist/. The test suite builds the CLI alone into its own
// directory so a concurrent `npm run build` never rewrites a file a
// test is running.
import { build } from 'esbuild';
import { parseArgs } from 'node:util';

const ENTRIES = { 'ecr-backup': 'cli/main.ts', worker: 'worker/main.ts', drill: 'worker/drill-main.ts' } as const;
type Bundle = keyof typeof ENTRIES;

const { values, positionals } = parseArgs({ options: { outdir: { type: 'string', default: 'dist' } }, allowPositionals: true });
const unknown = positionals.filter((name) => !(name in ENTRIES));
if (unknown.length > 0) {
  console.error(`unknown bundle ${unknown.join(', ')}; choose from ${Object.keys(ENTRIES).join(', ')}`);
  process.exit(2);
}
const names = (positionals.length > 0 ? positionals : Object.keys(ENTRIES)) as Bundle[];

await build({
  entryPoints: Object.fromEntries(names.map((name) => [name, ENTRIES[name]])),
  outdir: values.outdir,
  outExtension: { '.js': '.mjs' },
  bundle: true,
  platform: 'node',
  target: 'node20',
  format: 'esm',
  mainFields: ['module', 'main'],
  // Some dependencies still call require(); give the ESM bundle one.
  banner: { js: "import { createRequire as __createRequire } from 'node:module'; const require = __createRequire(import.meta.url);" },
  logLevel: 'warning',
});
