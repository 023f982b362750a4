// The quick start: runs the main job end to end on embedded defaults. A local registry with a few
// sample images is backed up into the directory store (.demo/store), restored into a second,
// empty registry, and verified; every digest is then compared with skopeo, an independent client.
import { execa } from 'execa';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { startRegistry, type TestRegistry } from '../test/harness/registry.ts';
import { cleanupFixtures } from '../test/harness/fixture-scratch.ts';
import { inspectRaw } from '../test/harness/fixture-tools.ts';
import { pushMultiArchIndex, pushSharedBaseTags } from '../test/harness/fixtures.ts';
import { pushSignature } from '../test/harness/fixture-artifacts.ts';
import type { PushedImage } from '../test/harness/fixture-types.ts';
import { table } from '../cli/format.ts';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const STORE = join(ROOT, '.demo/store');
const MiB = 1024 * 1024;

async function cli(...args: string[]): Promise<void> {
  process.stdout.write(`\n$ ecr-backup ${args.join(' ')}\n`);
  await execa('node', ['--import', 'tsx', join(ROOT, 'cli/main.ts'), ...args], { stdio: 'inherit', env: { NODE_NO_WARNINGS: '1' } });
}

let source: TestRegistry | undefined;
let target: TestRegistry | undefined;
try {
  [source, target] = await Promise.all([startRegistry(), startRegistry()]);
  process.stdout.write(`source registry ${source.url}, empty target registry ${target.url}, store ${STORE}\n`);
  process.stdout.write('pushing sample images: 3 tags sharing an 8 MiB base layer, a two-platform index, a cosign-style signature\n');
  const web = await pushSharedBaseTags(source, {
    repository: 'samples/web',
    tags: ['1.0', '1.1', '2.0'],
    baseSize: 8 * MiB,
    uniqueSize: 512 * 1024,
  });
  const multi = await pushMultiArchIndex(source, { repository: 'samples/multi', tag: 'latest' });
  const signature = await pushSignature(source, { repository: 'samples/web', signedDigest: web.images[0]!.digest });
  const images: PushedImage[] = [...web.images, multi, signature];

  await rm(STORE, { recursive: true, force: true });
  await cli('backup', '--registry', source.url, '--to', STORE);
  await cli('backup', '--registry', source.url, '--to', STORE); // incremental: nothing to copy
  await cli('restore', '--from', STORE, '--registry', target.url);
  await cli('verify', '--from', STORE);
  await cli('list', '--from', STORE);

  process.stdout.write('\ndigests compared with skopeo inspect --raw (source vs restored):\n');
  const rows: string[][] = [];
  let mismatches = 0;
  for (const image of images) {
    const restored = await inspectRaw(`${target.host}/${image.repository}:${image.tag}`);
    const equal = restored.digest === image.digest;
    if (!equal) mismatches++;
    rows.push([`${image.repository}:${image.tag}`, image.digest.slice(0, 19), restored.digest.slice(0, 19), equal ? 'equal' : 'DIFFERENT']);
  }
  process.stdout.write(`${table(['IMAGE', 'SOURCE DIGEST', 'RESTORED DIGEST', ''], rows)}\n`);
  process.stdout.write(
    mismatches === 0 ? `\nall ${images.length} images restored digest for digest.\n` : `\n${mismatches} image(s) differ.\n`,
  );
  process.exitCode = mismatches === 0 ? 0 : 1;
} finally {
  await Promise.all([source?.stop(), target?.stop()]);
  await cleanupFixtures();
}
