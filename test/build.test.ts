// The package as a user gets it: `npm run build` into a package directory of its own (never the
// repository's dist/, which other test files may be running), `npm pack`, then the tarball unpacked.
// The bundles must start on their own, and a CDK app with the package in its node_modules must
// synthesize `new EcrBackup(...)` from `ecr-backup/infra` out of the package's prebuilt assets
// (no TypeScript sources, no esbuild at synth). Offline: the app's aws-cdk-lib, constructs and zod
// are links to this repository's copies.
import { execa } from 'execa';
import { copyFile, mkdir, readFile, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { beforeAll, describe, expect, it } from 'vitest';
import { LAMBDA_SOURCES } from '../infra/assets.ts';
import { tempDir } from './harness/process.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const { version } = JSON.parse(await readFile(join(ROOT, 'package.json'), 'utf8')) as { version: string };
let outside: string;
let packed: { filename: string; files: Array<{ path: string }> };
/** The CDK app's directory; the unpacked package is its node_modules/ecr-backup. */
let app: string;
let installed: string;

beforeAll(async () => {
  const source = await tempDir('package');
  for (const file of ['package.json', 'LICENSE', 'README.md']) await copyFile(join(ROOT, file), join(source, file));
  // What `npm pack`'s prepack runs (`npm run build`: every target), written into the package directory.
  await execa('npx', ['tsx', 'scripts/build.ts', '--outdir', join(source, 'dist')], { cwd: ROOT });
  const packDir = await tempDir('pack');
  const { stdout } = await execa('npm', ['pack', '--ignore-scripts', '--json', '--pack-destination', packDir], { cwd: source });
  packed = (JSON.parse(stdout) as Array<typeof packed>)[0]!;

  app = await tempDir('cdk-app');
  installed = join(app, 'node_modules', 'ecr-backup');
  await mkdir(installed, { recursive: true });
  await execa('tar', ['-xzf', join(packDir, packed.filename), '-C', installed, '--strip-components=1']);
  for (const dep of ['aws-cdk-lib', 'constructs', 'zod']) await symlink(join(ROOT, 'node_modules', dep), join(app, 'node_modules', dep));

  // Run the bundles from a directory with no node_modules, as the image does.
  outside = await tempDir('bundle');
  await copyFile(join(installed, 'dist', 'ecr-backup.mjs'), join(outside, 'ecr-backup.mjs'));
  await copyFile(join(installed, 'dist', 'assets', 'worker-image', 'worker.mjs'), join(outside, 'worker.mjs'));
  // tsc over infra/ and nine esbuild bundles: ~45 s of CPU, minutes on busy shared cores.
}, 600_000);

describe('bundles', () => {
  it('the CLI bundle runs on its own and lists its commands', async () => {
    const { stdout, exitCode } = await execa('node', [join(outside, 'ecr-backup.mjs'), '--help'], { cwd: outside });
    expect(exitCode).toBe(0);
    for (const command of ['backup', 'restore', 'list', 'verify', 'run', 'runs'])
      expect(stdout).toMatch(new RegExp(`^\\s+${command}\\b`, 'm'));
  });

  it('the CLI bundle prints the package version (--version) with no package.json beside it', async () => {
    const { stdout, exitCode } = await execa('node', [join(outside, 'ecr-backup.mjs'), '--version'], { cwd: outside });
    expect(exitCode).toBe(0);
    expect(stdout.trim()).toBe(version);
  });

  it("the worker image's bundle runs on its own and refuses a bad environment with one structured log line", async () => {
    const result = await execa('node', [join(outside, 'worker.mjs')], {
      cwd: outside,
      env: { STORE_URL: 'ftp://nope', BATCH_KEY: '../x' },
      reject: false,
    });
    expect(result.exitCode).toBe(1);
    const line = JSON.parse(result.stderr.trim().split('\n').at(-1)!) as { level: string; error: { name: string; message: string } };
    expect(line).toMatchObject({ level: 'error', error: { name: 'ConfigurationError' } });
    expect(line.error.message).toMatch(/STORE_URL: .*BATCH_KEY: must be runs/);
  });
});

describe('npm package', () => {
  it('ships the CLI, the compiled construct with its types and the prebuilt assets, and no TypeScript source', () => {
    const files = packed.files.map((f) => f.path).sort();
    const lib = files.filter((f) => f.startsWith('dist/lib/'));
    expect(files.filter((f) => !lib.includes(f))).toEqual(
      [
        'LICENSE',
        'README.md',
        'package.json',
        'dist/ecr-backup.mjs',
        ...Object.keys(LAMBDA_SOURCES).map((name) => `dist/assets/lambda/${name}/index.mjs`),
        'dist/assets/worker-image/Dockerfile',
        'dist/assets/worker-image/drill.mjs',
        'dist/assets/worker-image/worker.mjs',
      ].sort(),
    );
    expect(lib).toContain('dist/lib/infra/index.js');
    // Every module has its declarations; nothing else (no .ts source, no test) is in the compiled tree.
    const modules = lib.filter((f) => f.endsWith('.js'));
    expect(lib.filter((f) => !f.endsWith('.d.ts')).sort()).toEqual(modules);
    expect(lib.filter((f) => f.endsWith('.d.ts')).sort()).toEqual(modules.map((f) => f.replace(/\.js$/, '.d.ts')));
  });

  it('its CLI runs from the unpacked tarball at its bin path (no install, no network)', async () => {
    const manifest = JSON.parse(await readFile(join(installed, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    const run = await execa('node', [join(installed, manifest.bin['ecr-backup']!), '--help'], { cwd: app });
    expect(run.stdout).toMatch(/^\s+backup\b/m);
  });

  it("a CDK app synthesizes EcrBackup from 'ecr-backup/infra' with the package's prebuilt Lambda and worker image assets", async () => {
    // Asset staging off: the assembly then names each asset's own directory, so the test sees where it came from.
    await writeFile(
      join(app, 'app.mjs'),
      [
        "import { App, Stack } from 'aws-cdk-lib';",
        "import { EcrBackup } from 'ecr-backup/infra';",
        "const app = new App({ outdir: 'cdk.out', context: { 'aws:cdk:disable-asset-staging': true } });",
        "const stack = new Stack(app, 'Platform', { env: { account: '111122223333', region: 'eu-west-1' } });",
        "new EcrBackup(stack, 'Backup', { repositories: ['team/**'], prune: { keepLast: 5 }, pushBackups: {} });",
        'app.synth();',
      ].join('\n'),
    );
    await execa('node', ['app.mjs'], { cwd: app });
    const template = JSON.parse(await readFile(join(app, 'cdk.out', 'Platform.template.json'), 'utf8')) as {
      Resources: Record<string, { Type: string; Properties?: Record<string, unknown> }>;
    };
    const resources = Object.values(template.Resources);
    expect(resources.filter((r) => r.Type === 'AWS::StepFunctions::StateMachine')).toHaveLength(1);
    const functions = resources.filter((r) => r.Type === 'AWS::Lambda::Function' && r.Properties?.Handler === 'index.handler');
    expect(functions.map((f) => f.Properties?.Runtime)).toEqual(Object.keys(LAMBDA_SOURCES).map(() => 'nodejs22.x'));

    const assets = JSON.parse(await readFile(join(app, 'cdk.out', 'Platform.assets.json'), 'utf8')) as {
      files: Record<string, { source: { path: string; packaging: string } }>;
      dockerImages: Record<string, { source: { directory: string; dockerFile: string } }>;
    };
    const zips = Object.values(assets.files)
      .filter((a) => a.source.packaging === 'zip')
      .map((a) => a.source.path)
      .sort();
    // Each Lambda's code is the package's prebuilt directory itself: nothing was bundled at synth.
    expect(zips).toEqual(
      Object.keys(LAMBDA_SOURCES)
        .map((name) => join(installed, 'dist', 'assets', 'lambda', name))
        .sort(),
    );
    expect(Object.values(assets.dockerImages).map((a) => a.source)).toEqual([
      { directory: join(installed, 'dist', 'assets', 'worker-image'), dockerFile: 'Dockerfile', platform: 'linux/amd64' },
    ]);
    // The image builds from that context alone: the bundles are copied in, nothing is compiled or installed.
    const dockerfile = await readFile(join(installed, 'dist', 'assets', 'worker-image', 'Dockerfile'), 'utf8');
    expect(dockerfile).toMatch(/^COPY worker\.mjs drill\.mjs \/app\/$/m);
    const instructions = dockerfile.split('\n').filter((line) => !line.startsWith('#'));
    expect(instructions.filter((line) => /\bnpm\b|--from=/.test(line))).toEqual([]);
  }, 300_000);
});
