// Bundles the CLI and the Fargate worker into one ESM file each (dist/), so they start without
// compiling TypeScript and run without node_modules. The Dockerfile and `npm run build` both use this.
import { build } from 'esbuild';

await build({
  entryPoints: { 'ecr-backup': 'cli/main.ts', worker: 'worker/main.ts', drill: 'worker/drill-main.ts' },
  outdir: 'dist',
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
