// Hostile input from the store: tampered directory stores (bad records, planted symlinks, malformed
// digests) and tampered docker-archives; each affects only itself and nothing outside the store is touched.
import { lstat, mkdir, readdir, readFile, rm, stat, symlink, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { beforeAll, describe, expect, it } from 'vitest';
import { planImages, type PlanSkip } from '../core/engine/plan.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { FileSystemObjectStore } from '../core/store/filesystem.ts';
import { verifyStore } from '../core/store/verify.ts';
import { pruneStore } from '../core/store/prune.ts';
import { unpackArchive } from '../core/archive/unpack.ts';
import { OCI_INDEX, sha256 } from './harness/hostile-registry.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { withTampered, type TamperableStore } from './harness/tampered-store.ts';
import { registry, tree, useHostileRegistry, work } from './harness/hostile-corpus.ts';

useHostileRegistry();
describe('tampered directory store', () => {
  let store: string;
  let objects: FileSystemObjectStore;
  const tamperable = (): TamperableStore => ({ url: store, objects, write: (key, bytes) => objects.put(key, bytes).then(() => undefined) });
  const recordsOf = async (repository: string, tag: string) =>
    (await tree(join(store, 'catalog', repository, '_tags', tag))).map((f) => `catalog/${repository}/_tags/${tag}/${f}`);

  beforeAll(async () => {
    store = join(work, 'tampered', 'store');
    await mkdir(join(work, 'tampered'));
    const backup = await runCli(['backup', '--registry', registry.url, '--to', store, '--repositories', 'apps/one', 'apps/two']);
    expect(backup.exitCode, backup.stderr).toBe(0);
    objects = new FileSystemObjectStore(store);
  });

  it('new files are 0600 and new directories 0700 whatever the umask', async () => {
    const [record] = await recordsOf('apps/one', 'v1');
    expect((await stat(join(store, record!))).mode & 0o777).toBe(0o600);
    expect((await stat(join(store, 'catalog', 'apps'))).mode & 0o777).toBe(0o700);
  });

  it('bad records affect only themselves: list goes on and warns, verify reports each one (exit 1)', async () => {
    // apps/one:v2's record claims to be v1 (it would hide v2 from restore); apps/two:v1's is not JSON.
    const [v2] = await recordsOf('apps/one', 'v2');
    const body = JSON.parse(await readFile(join(store, v2!), 'utf8')) as Record<string, unknown>;
    const [two] = await recordsOf('apps/two', 'v1');
    // A 2 MiB record is refused without being parsed.
    const huge = `catalog/apps/one/_tags/big/20260101T000000000Z_${'0'.repeat(64)}.json`;
    const edits = {
      [v2!]: Buffer.from(JSON.stringify({ ...body, tag: 'v1' })),
      [two!]: Buffer.from('{"repository": '),
      [huge]: Buffer.alloc(2 * 1024 * 1024, 0x20),
    };
    await withTampered(tamperable(), edits, async () => {
      const list = await runCliJson<{ repository: string; tag: string }[]>(['list', '--from', store]);
      expect(list.exitCode).toBe(0);
      expect(list.json.map((e) => `${e.repository}:${e.tag}`)).toEqual(['apps/one:v1']);
      expect(list.stderr).toMatch(
        /warning: skipped apps\/one: catalog record .*_tags\/v2\/.* rejected: its body names tag "v1", its key v2/,
      );
      expect(list.stderr).toMatch(/warning: skipped apps\/two: catalog record .* rejected: not valid JSON/);
      expect(list.stderr).toMatch(
        /warning: skipped apps\/one: catalog record .*_tags\/big\/.* rejected: .*is more than the 1048576 bytes allowed/,
      );

      const verify = await runCliJson<{ problems: { repository: string; tag?: string; problem: string; detail: string }[] }>([
        'verify',
        '--from',
        store,
      ]);
      expect(verify.exitCode).toBe(1);
      expect(verify.json.problems.map((p) => `${p.repository}:${p.tag}:${p.problem}`).sort()).toEqual([
        'apps/one:big:corrupt',
        'apps/one:v2:corrupt',
        'apps/two:v1:corrupt',
      ]);
    });
    await rm(join(store, 'catalog/apps/one/_tags/big'), { recursive: true, force: true }); // the tag directory the delete may leave
  });

  it('a record dated 9999 does not pin its tag: it is ignored and the next backup is visible', async () => {
    const [v1] = await recordsOf('apps/two', 'v1');
    const body = JSON.parse(await readFile(join(store, v1!), 'utf8')) as { digest: string; backedUpAt: string };
    // The same key as the real record, dated 9999 (the key's time is what orders a tag's history).
    const future = `catalog/apps/two/_tags/v1/99991231T000000000Z${v1!.split('/').at(-1)!.slice(19)}`;
    await withTampered(
      tamperable(),
      { [future]: Buffer.from(JSON.stringify({ ...body, backedUpAt: '9999-12-31T00:00:00.000Z' })) },
      async () => {
        const view = new BackupStore(objects);
        expect((await view.repository('apps/two').resolveTag('v1'))?.key).toBe(v1);
        expect((await view.repository('apps/two').listImages()).map((l) => l.time)).toEqual([body.backedUpAt]);
        expect(view.rejectedRecords()).toEqual([
          expect.objectContaining({
            repository: 'apps/two',
            tag: 'v1',
            reason: expect.stringMatching(/99991231T000000000Z.* rejected: dated in the future/),
          }),
        ]);
      },
    );
  });

  it('prune keeps live data whatever a record body claims (mediaType index, format docker-archive)', async () => {
    const [v1] = await recordsOf('apps/one', 'v1');
    const [two] = await recordsOf('apps/two', 'v1');
    const oneBody = JSON.parse(await readFile(join(store, v1!), 'utf8')) as Record<string, unknown>;
    const twoBody = JSON.parse(await readFile(join(store, two!), 'utf8')) as Record<string, unknown>;
    await writeFile(join(store, v1!), JSON.stringify({ ...oneBody, mediaType: OCI_INDEX }));
    await writeFile(
      join(store, two!),
      JSON.stringify({
        ...twoBody,
        format: 'docker-archive',
        archive: {
          key: 'x/apps/two/v1.tar',
          sha256: `sha256:${'1'.repeat(64)}`,
          size: 1,
          compression: 'none',
          platform: 'linux/amd64',
          configDigest: `sha256:${'2'.repeat(64)}`,
        },
      }),
    );
    const blobsBefore = await tree(join(store, 'blobs'));
    try {
      const report = await pruneStore(objects, { keepLast: 5, graceMs: 0 });
      expect(report.blobs.deleted).toBe(0);
      expect(await tree(join(store, 'blobs'))).toEqual(blobsBefore);
      const verify = await verifyStore(new BackupStore(objects));
      // verify names both: the image's type disagrees with its manifest, the claimed archive is not there.
      expect(verify.problems.map((p) => `${p.repository}:${p.tag}:${p.problem}`).sort()).toEqual([
        'apps/one:v1:corrupt',
        'apps/two:v1:missing',
      ]);
    } finally {
      await writeFile(join(store, v1!), JSON.stringify(oneBody));
      await writeFile(join(store, two!), JSON.stringify(twoBody));
    }
  });

  it('verify reports a malformed layer digest and checks the other images', async () => {
    const configDigest = sha256(Buffer.from('x'));
    await objects.put(`blobs/sha256/${configDigest.slice(7)}`, Buffer.from('x'));
    const bytes = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: 'application/vnd.oci.image.manifest.v1+json',
        config: { mediaType: 'a', digest: configDigest, size: 1 },
        layers: [{ mediaType: 'b', digest: 'sha256:../../zz', size: 3 }],
      }),
    );
    const digest = sha256(bytes);
    await objects.put(`blobs/sha256/${digest.slice(7)}`, bytes);
    const time = '20260101T000000000Z';
    const key = `catalog/apps/bad/_tags/v1/${time}_${digest.slice(7)}.json`;
    await objects.put(
      key,
      Buffer.from(
        JSON.stringify({
          repository: 'apps/bad',
          tag: 'v1',
          digest,
          mediaType: 'application/vnd.oci.image.manifest.v1+json',
          manifestSize: bytes.length,
          imageBytes: 1,
          backedUpAt: '2026-01-01T00:00:00.000Z',
        }),
      ),
    );
    try {
      const report = await verifyStore(new BackupStore(objects));
      expect(report.problems).toEqual([
        expect.objectContaining({
          repository: 'apps/bad',
          tag: 'v1',
          problem: 'corrupt',
          detail: expect.stringMatching(/malformed descriptor: digest "sha256:..\/..\/zz"/),
        }),
      ]);
      expect(report.checkedImages).toBe(4); // apps/one v1 v2, apps/two v1, apps/bad v1
    } finally {
      await rm(join(store, 'catalog/apps/bad'), { recursive: true });
    }
  });

  it('symbolic links planted in the store are never followed, for reads or writes', async () => {
    const outside = join(work, 'tampered', 'outside');
    await mkdir(outside);
    await writeFile(join(outside, 'secret.json'), '{"secret": true}');
    // A record that is a link to a file outside, and a .tmp that is a link to a directory outside.
    const link = join(store, 'catalog/apps/two/_tags/v1', `20200101T000000000Z_${'3'.repeat(64)}.json`);
    await symlink(join(outside, 'secret.json'), link);
    await symlink(outside, join(store, '.tmp-target'));
    await rm(join(store, '.tmp'), { recursive: true, force: true });
    await symlink(outside, join(store, '.tmp'));
    try {
      const fresh = new FileSystemObjectStore(store); // a new process: nothing checked yet
      await expect(fresh.getBytes(link.slice(store.length + 1))).rejects.toThrow(/symbolic link; refusing to follow it/);
      await expect(fresh.put('runs/x/y.json', Buffer.from('{}'))).rejects.toThrow(/\.tmp is a symbolic link; refusing to follow it/);
      const backup = await runCli(['backup', '--registry', registry.url, '--to', store, '--repositories', 'apps/one']);
      expect(backup.exitCode).not.toBe(0);
      expect(await readdir(outside)).toEqual(['secret.json']);
      expect((await lstat(join(store, '.tmp'))).isSymbolicLink()).toBe(true);
    } finally {
      await rm(link);
      await rm(join(store, '.tmp'));
      await rm(join(store, '.tmp-target'));
    }
  });

  it('planning a restore from a store with bad records plans the rest and reports the skips', async () => {
    const [v2] = await recordsOf('apps/one', 'v2');
    const body = await readFile(join(store, v2!));
    await writeFile(join(store, v2!), 'not json');
    try {
      const view = new BackupStore(objects);
      const skips: PlanSkip[] = [];
      const items = await planImages(view, {}, 8, (n) => skips.push(n));
      expect(items.map((i) => `${i.repository}:${i.tag}`)).toEqual(['apps/one:v1', 'apps/two:v1']);
      expect(view.rejectedRecords()).toEqual([
        expect.objectContaining({ repository: 'apps/one', tag: 'v2', reason: expect.stringMatching(/not valid JSON/) }),
      ]);
    } finally {
      await writeFile(join(store, v2!), body);
    }
  });
});

describe('tampered docker-archive', () => {
  it('a tampered archive is refused before anything is decompressed; a bomb stops at the cap', async () => {
    const dir = join(work, 'archive');
    await mkdir(join(dir, 'unpack'), { recursive: true });
    const objects = new FileSystemObjectStore(join(dir, 'store'));
    const bomb = gzipSync(Buffer.alloc(64 * 1024 * 1024));
    await objects.put('l/apps/x/v1.tar.gz', bomb);
    const recorded = { key: 'l/apps/x/v1.tar.gz', sha256: `sha256:${'4'.repeat(64)}`, size: bomb.length, compression: 'gzip' as const };
    await expect(unpackArchive(new BackupStore(objects), recorded, join(dir, 'unpack'))).rejects.toThrow(/hashes to|digest/);
    expect(await readdir(join(dir, 'unpack'))).toEqual([]);
    await expect(
      unpackArchive(new BackupStore(objects), { ...recorded, sha256: sha256(bomb) }, join(dir, 'unpack'), { maxBytes: 1024 * 1024 }),
    ).rejects.toThrow(/decompresses to more than 1048576 bytes/);
    expect(await readdir(join(dir, 'unpack'))).toEqual([]);
  });
});
