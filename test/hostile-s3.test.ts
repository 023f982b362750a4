// The hostile-input corpus against tampered S3 stores (moto): records and blobs overwritten with a
// raw PutObject behind the store's back. For each case: the clear error, the exit code, that the
// rest of the run completed, and that nothing else in the bucket changed.
import { PutObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { BackupStore } from '../core/store/backup-store.ts';
import { S3ObjectStore } from '../core/store/s3.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { HostileRegistry, OCI_MANIFEST } from './harness/hostile-registry.ts';
import { motoService, registryService, useServices } from './harness/services.ts';
import { fingerprint, recordKeys, withTampered, type TamperableStore } from './harness/tampered-store.ts';

const BUCKET = 'hostile-s3';
const { moto, target } = useServices({ moto: motoService({ awsEnv: true, buckets: [BUCKET] }), target: registryService() });
let source: HostileRegistry;
let store: TamperableStore;
/** The whole bucket, to show that a case changed nothing but what it tampered with. */
let bucket: S3ObjectStore;

type Problem = { repository: string; tag?: string; problem: string; detail: string; blob?: string };

beforeAll(async () => {
  source = new HostileRegistry();
  await source.start();
  source.tag('apps/one', 'v1', source.addImage('one-v1').digest);
  source.tag('apps/one', 'v2', source.addImage('one-v2').digest);
  source.tag('apps/two', 'v1', source.addImage('two-v1').digest);
  const objects = new S3ObjectStore({ bucket: BUCKET, prefix: 'store' });
  store = {
    url: `s3://${BUCKET}/store`,
    objects,
    write: async (key, bytes) =>
      void (await objects.client.send(new PutObjectCommand({ Bucket: BUCKET, Key: objects.prefix + key, Body: bytes }))),
  };
  bucket = new S3ObjectStore({ bucket: BUCKET });
  // Something beside the store in the same bucket: no case may touch it.
  await bucket.put('other/keep.json', Buffer.from('{"keep": true}'));
  const backup = await runCli(['backup', '--registry', source.url, '--to', store.url], { env: moto.env });
  expect(backup.exitCode, backup.stderr).toBe(0);
}, 120_000);

afterAll(async () => {
  await source?.stop();
});

/** Runs `check` on the tampered store and asserts that every other object in the bucket is unchanged. */
async function tampered(edits: Record<string, Buffer>, check: () => Promise<void>): Promise<void> {
  const before = await fingerprint(bucket);
  await withTampered(store, edits, check);
  // Reports of runs are the only objects a read-only command may add.
  expect((await fingerprint(bucket)).filter((line) => !line.startsWith('store/runs/'))).toEqual(
    before.filter((line) => !line.startsWith('store/runs/')),
  );
}

const record = async (repository: string, tag: string) => {
  const [key] = await recordKeys(store.objects, repository, tag);
  return { key: key!, body: JSON.parse((await store.objects.getBytes(key!)).toString()) as Record<string, unknown> };
};

const list = () => runCliJson<{ repository: string; tag: string }[]>(['list', '--from', store.url], { env: moto.env });
const verify = () => runCliJson<{ problems: Problem[]; checkedImages?: number }>(['verify', '--from', store.url], { env: moto.env });
const listed = (entries: { repository: string; tag: string }[]) => entries.map((e) => `${e.repository}:${e.tag}`).sort();
const problems = (ps: Problem[]) => ps.map((p) => `${p.repository}:${p.tag}:${p.problem}`).sort();

describe('tampered S3 store (moto)', () => {
  it('a record that is not JSON affects only its tag: list warns and lists the rest (exit 0), verify reports it (exit 1)', async () => {
    const two = await record('apps/two', 'v1');
    await tampered({ [two.key]: Buffer.from('{"repository": ') }, async () => {
      const l = await list();
      expect(l.exitCode, l.stderr).toBe(0);
      expect(listed(l.json)).toEqual(['apps/one:v1', 'apps/one:v2']);
      expect(l.stderr).toMatch(/warning: skipped apps\/two: catalog record .* rejected: not valid JSON/);
      const v = await verify();
      expect(v.exitCode).toBe(1);
      expect(problems(v.json.problems)).toEqual(['apps/two:v1:corrupt']);
    });
  });

  it('a record whose body disagrees with its key (tag, digest) is rejected, naming what disagrees; the other tags are listed', async () => {
    const v2 = await record('apps/one', 'v2');
    const two = await record('apps/two', 'v1');
    const v1 = await record('apps/one', 'v1');
    await tampered(
      {
        [v2.key]: Buffer.from(JSON.stringify({ ...v2.body, tag: 'v1' })),
        [two.key]: Buffer.from(JSON.stringify({ ...two.body, digest: v1.body.digest })),
      },
      async () => {
        const l = await list();
        expect(l.exitCode, l.stderr).toBe(0);
        expect(listed(l.json)).toEqual(['apps/one:v1']);
        expect(l.stderr).toMatch(
          /warning: skipped apps\/one: catalog record .*_tags\/v2\/.* rejected: its body names tag "v1", its key v2/,
        );
        expect(l.stderr).toMatch(
          /warning: skipped apps\/two: catalog record .*_tags\/v1\/.* rejected: its body names digest sha256:[0-9a-f]{64}, its key sha256:[0-9a-f]{64}/,
        );
        const v = await verify();
        expect(v.exitCode).toBe(1);
        expect(problems(v.json.problems)).toEqual(['apps/one:v2:corrupt', 'apps/two:v1:corrupt']);
      },
    );
  });

  it('a record dated 9999-12-31 does not pin its tag: it is rejected as dated in the future and the real record is used', async () => {
    const two = await record('apps/two', 'v1');
    const future = `catalog/apps/two/_tags/v1/99991231T000000000Z${two.key.split('/').at(-1)!.slice(19)}`;
    await tampered({ [future]: Buffer.from(JSON.stringify({ ...two.body, backedUpAt: '9999-12-31T00:00:00.000Z' })) }, async () => {
      const view = new BackupStore(store.objects);
      expect((await view.repository('apps/two').resolveTag('v1'))?.key).toBe(two.key);
      expect((await view.repository('apps/two').listImages()).map((l) => l.time)).toEqual([two.body.backedUpAt]);
      expect(view.rejectedRecords()).toEqual([
        expect.objectContaining({
          repository: 'apps/two',
          tag: 'v1',
          reason: expect.stringMatching(/99991231T000000000Z.* rejected: dated in the future/),
        }),
      ]);
      const l = await list();
      expect(l.exitCode, l.stderr).toBe(0);
      expect(listed(l.json)).toEqual(['apps/one:v1', 'apps/one:v2', 'apps/two:v1']);
    });
  });

  it('a record over the 1 MiB cap is refused without being parsed; the rest is listed and verified', async () => {
    const huge = `catalog/apps/one/_tags/big/20260101T000000000Z_${'0'.repeat(64)}.json`;
    await tampered({ [huge]: Buffer.alloc(2 * 1024 * 1024, 0x20) }, async () => {
      const l = await list();
      expect(l.exitCode, l.stderr).toBe(0);
      expect(listed(l.json)).toEqual(['apps/one:v1', 'apps/one:v2', 'apps/two:v1']);
      expect(l.stderr).toMatch(
        /warning: skipped apps\/one: catalog record .*_tags\/big\/.* rejected: .*is more than the 1048576 bytes allowed/,
      );
      const v = await verify();
      expect(v.exitCode).toBe(1);
      expect(problems(v.json.problems)).toEqual(['apps/one:big:corrupt']);
    });
  });

  it('a blob replaced with other bytes: verify reports it corrupt, its restore fails with a digest error, the other images restore (exit 1)', async () => {
    const v1 = await record('apps/one', 'v1');
    const manifest = JSON.parse((await store.objects.getBytes(`blobs/sha256/${String(v1.body.digest).slice(7)}`)).toString()) as {
      layers: { digest: string }[];
    };
    const layer = `blobs/sha256/${manifest.layers[0]!.digest.slice(7)}`;
    // The same size, other bytes: only the digest check can catch it.
    const other = Buffer.from((await store.objects.getBytes(layer)).toString().toUpperCase());
    await tampered({ [layer]: other }, async () => {
      const v = await verify();
      expect(v.exitCode).toBe(1);
      expect(v.json.problems).toEqual([
        expect.objectContaining({
          repository: 'apps/one',
          tag: 'v1',
          problem: 'corrupt',
          blob: manifest.layers[0]!.digest,
          detail: expect.stringMatching(/^content hashes to sha256:/),
        }),
      ]);

      const restore = await runCliJson<{ counts: Record<string, number>; failures: { error: string }[] }>(
        ['restore', '--from', store.url, '--registry', target.url, '--repository-prefix', 'r/'],
        { env: moto.env },
      );
      expect(restore.exitCode).toBe(1);
      expect(restore.json.counts).toMatchObject({ images: 3, copied: 2, failed: 1 });
      expect(restore.json.failures).toEqual([expect.objectContaining({ error: expect.stringMatching(/apps\/one:v1: .*digest/) })]);
      const tags = async (repository: string) =>
        ((await (await fetch(`${target.url}/v2/${repository}/tags/list`)).json()) as { tags?: string[] }).tags ?? [];
      expect(await tags('r/apps/one')).toEqual(['v2']);
      expect(await tags('r/apps/two')).toEqual(['v1']);
      // The others restored digest for digest.
      const restored = async (repository: string, tag: string) =>
        (await fetch(`${target.url}/v2/${repository}/manifests/${tag}`, { method: 'HEAD', headers: { accept: OCI_MANIFEST } })).headers.get(
          'docker-content-digest',
        );
      expect(await restored('r/apps/one', 'v2')).toBe((await record('apps/one', 'v2')).body.digest);
      expect(await restored('r/apps/two', 'v1')).toBe((await record('apps/two', 'v1')).body.digest);
    });
  });
});
