// The backup store against real backends: moto's S3 and a temporary directory run the same
// behavioural suite, ObjectStore first, then the image layout (BackupStore) and verification.
import { CreateBucketCommand, HeadObjectCommand, ListMultipartUploadsCommand, PutObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { digestBase64, DigestMismatchError, sha256Digest } from '../core/model/digest.ts';
import { manifestFromBytes, MediaType, type Descriptor, type Manifest } from '../core/model/manifest.ts';
import { BackupStore, IncompleteImageError, ManifestNotFoundError, ReadOnlyStoreError } from '../core/store/backup-store.ts';
import { FileSystemObjectStore } from '../core/store/filesystem.ts';
import { InvalidNameError } from '../core/store/layout.ts';
import { InvalidKeyError, NotFoundError, readAll, readJson, writeJson, type ObjectStore } from '../core/store/object-store.ts';
import { createS3Client, S3ObjectStore } from '../core/store/s3.ts';
import { openStore, StoreUrlError } from '../core/store/url.ts';
import { verifyStore } from '../core/store/verify.ts';
import { applyAwsEnv, startMoto, type TestMoto } from './harness/moto.ts';
import { tempDir } from './harness/process.ts';

const MiB = 1024 * 1024;
const BUCKET = 'ecr-backup-store-test';

let moto: TestMoto;
let restoreEnv: () => void;

beforeAll(async () => {
  moto = await startMoto();
  restoreEnv = applyAwsEnv(moto.env);
  await createS3Client().send(new CreateBucketCommand({ Bucket: BUCKET }));
});

afterAll(async () => {
  restoreEnv?.();
  await moto?.stop();
});

interface Backend {
  name: string;
  make(): Promise<ObjectStore>;
  /** Replaces an object's bytes behind the store's back (disk write / raw PutObject). */
  tamper(store: ObjectStore, key: string, bytes: Buffer): Promise<void>;
  /** Leftovers of interrupted writes: S3 multipart uploads, or files in <root>/.tmp. */
  leftovers(store: ObjectStore): Promise<string[]>;
}

let prefixCounter = 0;
const backends: Backend[] = [
  {
    name: 'filesystem',
    make: async () => new FileSystemObjectStore(join(await tempDir('store'), 'root')),
    tamper: async (store, key, bytes) => writeFile(join((store as FileSystemObjectStore).root, ...key.split('/')), bytes),
    leftovers: async (store) => readdir(join((store as FileSystemObjectStore).root, '.tmp')).catch(() => []),
  },
  {
    name: 's3',
    // 5 MiB parts so a 6 MiB body already goes multipart.
    make: async () => new S3ObjectStore({ bucket: BUCKET, prefix: `run/p${++prefixCounter}`, partSize: 5 * MiB }),
    tamper: async (store, key, bytes) => {
      const s3 = store as S3ObjectStore;
      await s3.client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: s3.prefix + key, Body: bytes }));
    },
    leftovers: async (store) => {
      const s3 = store as S3ObjectStore;
      const out = await s3.client.send(new ListMultipartUploadsCommand({ Bucket: s3.bucket, Prefix: s3.prefix }));
      return (out.Uploads ?? []).map((u) => `${u.Key} ${u.UploadId}`);
    },
  },
];

async function keys(store: ObjectStore, prefix = ''): Promise<string[]> {
  const out: string[] = [];
  for await (const o of store.list(prefix)) out.push(o.key);
  return out;
}

/** A stream of `failAfter` random bytes in 1 MiB chunks that then errors. */
function failingStream(failAfter: number, error = new Error('connection reset by peer')): Readable {
  let sent = 0;
  return new Readable({
    read() {
      if (sent >= failAfter) {
        this.destroy(error);
        return;
      }
      const n = Math.min(MiB, failAfter - sent);
      sent += n;
      this.push(randomBytes(n));
    },
  });
}

describe.each(backends)('ObjectStore: $name', (backend) => {
  it('puts, gets, heads, lists in key order and deletes', async () => {
    const store = await backend.make();
    await store.put('a/b/c.txt', Buffer.from('hello'));
    await store.put('a/b-c', Readable.from([Buffer.from('x'), Buffer.from('yz')]));
    await store.put('a/b/d', Buffer.from(''));
    await store.put('z', Buffer.from('zz'), { contentType: 'text/plain' });

    expect((await store.getBytes('a/b/c.txt')).toString()).toBe('hello');
    expect((await readAll(await store.get('a/b-c'))).toString()).toBe('xyz');
    expect(await store.head('a/b/c.txt')).toMatchObject({ size: 5 });
    expect((await store.head('a/b/d'))?.size).toBe(0);
    expect(await store.head('a/b')).toBeUndefined();
    expect(await store.head('nope')).toBeUndefined();

    expect(await keys(store)).toEqual(['a/b-c', 'a/b/c.txt', 'a/b/d', 'z']);
    expect(await keys(store, 'a/')).toEqual(['a/b-c', 'a/b/c.txt', 'a/b/d']);
    expect(await keys(store, 'a/b/')).toEqual(['a/b/c.txt', 'a/b/d']);
    expect(await keys(store, 'a/b/c')).toEqual(['a/b/c.txt']);
    expect(await keys(store, 'missing/')).toEqual([]);
    const listed = [];
    for await (const o of store.list('a/b/c')) listed.push(o);
    expect(listed[0]).toMatchObject({ key: 'a/b/c.txt', size: 5 });
    expect(listed[0]!.lastModified).toBeInstanceOf(Date);

    await store.delete('a/b/c.txt');
    await store.delete('a/b/c.txt'); // idempotent
    await expect(store.get('a/b/c.txt')).rejects.toBeInstanceOf(NotFoundError);
    await expect(store.getBytes('a/b/c.txt')).rejects.toBeInstanceOf(NotFoundError);
    expect(await keys(store, 'a/')).toEqual(['a/b-c', 'a/b/d']);
  });

  it('ifAbsent keeps the existing object', async () => {
    const store = await backend.make();
    expect(await store.put('k', Buffer.from('first'), { ifAbsent: true })).toEqual({ created: true });
    expect(await store.put('k', Buffer.from('second'), { ifAbsent: true })).toEqual({ created: false });
    expect(await store.put('k', Readable.from([Buffer.from('third')]), { ifAbsent: true })).toEqual({ created: false });
    expect((await store.getBytes('k')).toString()).toBe('first');
    expect(await store.put('k', Buffer.from('fourth'))).toEqual({ created: true });
    expect((await store.getBytes('k')).toString()).toBe('fourth');
  });

  it('ifAbsent also holds for multipart-sized bodies', async () => {
    const store = await backend.make();
    const first = randomBytes(6 * MiB);
    expect(await store.put('m', first, { ifAbsent: true })).toEqual({ created: true });
    expect(await store.put('m', Readable.from([randomBytes(6 * MiB)]), { ifAbsent: true })).toEqual({ created: false });
    expect(sha256Digest(await store.getBytes('m'))).toBe(sha256Digest(first));
    expect(await backend.leftovers(store)).toEqual([]);
  });

  it('refuses content that does not match the expected digest or size, committing nothing', async () => {
    const store = await backend.make();
    const good = Buffer.from('content');
    const expected = { digest: sha256Digest(good), size: good.length };
    const other = Buffer.from('CONTENT'); // same size, other digest
    await expect(store.put('x', other, { expected })).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.put('x', Buffer.from('content!'), { expected })).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.put('x', Readable.from([other]), { expected })).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.put('x', Readable.from([good, good]), { expected })).rejects.toBeInstanceOf(DigestMismatchError);
    await expect(store.put('x', Readable.from([good.subarray(0, 3)]), { expected })).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await store.head('x')).toBeUndefined();
    expect(await keys(store)).toEqual([]);
    expect(await backend.leftovers(store)).toEqual([]);
    await store.put('x', Readable.from([good]), { expected });
    expect(await store.getBytes('x')).toEqual(good);
    expect(await backend.leftovers(store)).toEqual([]);
  });

  it('streams an empty body with its expected digest', async () => {
    const store = await backend.make();
    const empty = Buffer.alloc(0);
    expect(await store.put('empty', Readable.from([]), { expected: { digest: sha256Digest(empty), size: 0 } })).toEqual({ created: true });
    expect(await store.getBytes('empty')).toEqual(empty);
    expect(await backend.leftovers(store)).toEqual([]);
  });

  it('commits nothing when a multipart-sized body does not match its digest', async () => {
    const store = await backend.make();
    const bytes = randomBytes(6 * MiB);
    const expected = { digest: sha256Digest(randomBytes(16)), size: bytes.length };
    await expect(
      store.put('big/mismatch', Readable.from([bytes.subarray(0, 3 * MiB), bytes.subarray(3 * MiB)]), { expected }),
    ).rejects.toBeInstanceOf(DigestMismatchError);
    expect(await store.head('big/mismatch')).toBeUndefined();
    expect(await keys(store)).toEqual([]);
    expect(await backend.leftovers(store)).toEqual([]);
  });

  it('commits nothing when a >5 MiB body fails after 6 MiB (no object, no multipart upload left)', async () => {
    const store = await backend.make();
    const commands: string[] = [];
    if (store instanceof S3ObjectStore) {
      store.client.middlewareStack.add(
        (next, context) => async (args) => {
          commands.push(context.commandName ?? '?');
          return next(args);
        },
        { step: 'initialize', name: 'recordCommands' },
      );
    }
    await expect(store.put('big/failing', failingStream(6 * MiB))).rejects.toThrow('connection reset by peer');
    expect(await store.head('big/failing')).toBeUndefined();
    expect(await keys(store)).toEqual([]);
    expect(await backend.leftovers(store)).toEqual([]);
    if (store instanceof S3ObjectStore) {
      // The failure really happened mid multipart upload, and that upload was aborted.
      expect(commands).toContain('CreateMultipartUploadCommand');
      expect(commands).toContain('AbortMultipartUploadCommand');
      expect(commands).not.toContain('CompleteMultipartUploadCommand');
    }
  });

  it('round-trips a 17 MiB object with its sha256', async () => {
    const store = await backend.make();
    const bytes = randomBytes(17 * MiB + 123);
    const digest = sha256Digest(bytes);
    const chunks = Array.from({ length: Math.ceil(bytes.length / (256 * 1024)) }, (_, i) =>
      bytes.subarray(i * 256 * 1024, (i + 1) * 256 * 1024),
    );
    await store.put('large', Readable.from(chunks), { expected: { digest, size: bytes.length } });
    expect((await store.head('large'))?.size).toBe(bytes.length);
    const hash = createHash('sha256');
    for await (const chunk of await store.get('large')) hash.update(chunk as Buffer);
    expect(`sha256:${hash.digest('hex')}`).toBe(digest);
  });

  it('refuses keys that could escape the root', async () => {
    const store = await backend.make();
    for (const key of ['../x', 'a/../../x', '/etc/passwd', 'a\\..\\b', 'a\0b', '', 'a//b', './a', 'a/.']) {
      await expect(store.put(key, Buffer.from('x')), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.getBytes(key), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.head(key), key).rejects.toBeInstanceOf(InvalidKeyError);
      await expect(store.delete(key), key).rejects.toBeInstanceOf(InvalidKeyError);
    }
    await expect(keys(store, '../')).rejects.toBeInstanceOf(InvalidKeyError);
    expect(await keys(store)).toEqual([]);
    if (store instanceof FileSystemObjectStore) {
      await expect(store.put('.tmp/x', Buffer.from('x'))).rejects.toBeInstanceOf(InvalidKeyError);
      expect(await readdir(dirname(store.root))).toEqual([]); // nothing written next to the root
    }
  });

  it('writes and reads JSON', async () => {
    const store = await backend.make();
    await writeJson(store, 'runs/r1/report.json', { runId: 'r1', n: 1 });
    expect(await readJson(store, 'runs/r1/report.json')).toEqual({ runId: 'r1', n: 1 });
    await expect(readJson(store, 'runs/r2/report.json')).rejects.toBeInstanceOf(NotFoundError);
  });
});

describe('S3ObjectStore', () => {
  it('sends the whole-object SHA256 on single puts; multipart uploads round-trip without a SHA256 checksum pass', async () => {
    const store = new S3ObjectStore({ bucket: BUCKET, prefix: 'checksums', partSize: 5 * MiB });
    const head = (key: string) =>
      store.client.send(new HeadObjectCommand({ Bucket: BUCKET, Key: `checksums/${key}`, ChecksumMode: 'ENABLED' }));
    const small = randomBytes(1000);
    await store.put('small', Readable.from([small]), { expected: { digest: sha256Digest(small), size: small.length } });
    expect((await head('small')).ChecksumSHA256).toBe(digestBase64(sha256Digest(small)));
    const large = randomBytes(11 * MiB);
    await store.put('large', Readable.from([large]), { expected: { digest: sha256Digest(large), size: large.length } });
    expect((await head('large')).ChecksumSHA256).toBeUndefined();
    expect(sha256Digest(await store.getBytes('large'))).toBe(sha256Digest(large));
  });
});

// ---- Images built by hand -------------------------------------------------------------------------

interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

function blob(
  bytes: Buffer = randomBytes(64 + Math.floor(Math.random() * 4096)),
  mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip',
): Blob {
  return { descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length }, bytes };
}

function image(layers: Blob[], arch = 'amd64'): { manifest: Manifest; blobs: Blob[] } {
  const config = blob(
    Buffer.from(
      JSON.stringify({ architecture: arch, os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') }),
    ),
    MediaType.OciImageConfig,
  );
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciManifest,
      config: config.descriptor,
      layers: layers.map((l) => l.descriptor),
    }),
  );
  return { manifest: manifestFromBytes(bytes), blobs: [config, ...layers] };
}

function index(children: { manifest: Manifest; platform: { os: string; architecture: string; variant?: string } }[]): Manifest {
  const bytes = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: children.map((c) => ({ ...c.manifest.descriptor, platform: c.platform })),
    }),
  );
  return manifestFromBytes(bytes);
}

function clock(start = '2026-01-01T00:00:00.000Z') {
  let now = new Date(start);
  return {
    now: () => now,
    set: (iso: string) => (now = new Date(iso)),
  };
}

/** Stores an image's blobs, then its manifest; `ref` undefined stores it the way index children are stored. */
async function putImage(
  store: BackupStore,
  repository: string,
  img: { manifest: Manifest; blobs: Blob[] },
  ref?: string | { digest: string },
) {
  const repo = store.repository(repository);
  for (const b of img.blobs) await repo.putBlob(b.descriptor, Readable.from([b.bytes]));
  await repo.putManifest(img.manifest, typeof ref === 'string' ? { tag: ref } : ref);
}

const bytesOf = (img: { manifest: Manifest; blobs: Blob[] }) =>
  img.manifest.descriptor.size + img.blobs.reduce((n, b) => n + b.descriptor.size, 0);

describe.each(backends)('BackupStore: $name', (backend) => {
  it('stores blobs and manifests content-addressed and writes catalog records', async () => {
    const objects = await backend.make();
    const time = clock('2026-11-26T10:25:33.123Z');
    const store = new BackupStore(objects, { runId: 'run-1', now: time.now });
    const img = image([blob(), blob()]);
    await putImage(store, 'team/app', img, 'v1');

    const repo = store.repository('team/app');
    expect(await repo.hasManifest(img.manifest.descriptor)).toBe(true);
    for (const b of img.blobs) expect(await repo.hasBlob(b.descriptor)).toBe(true);
    expect(await repo.hasBlob(blob().descriptor)).toBe(false);

    const hex = img.manifest.descriptor.digest.slice(7);
    expect(await keys(objects, 'catalog/')).toEqual([`catalog/team/app/_tags/v1/20261126T102533123Z_${hex}.json`]);
    expect((await keys(objects, 'blobs/sha256/')).sort()).toEqual(
      [img.manifest, ...img.blobs].map((x) => `blobs/sha256/${x.descriptor.digest.slice(7)}`).sort(),
    );
    const record = await readJson(objects, `catalog/team/app/_tags/v1/20261126T102533123Z_${hex}.json`);
    expect(record).toEqual({
      repository: 'team/app',
      tag: 'v1',
      digest: img.manifest.descriptor.digest,
      mediaType: MediaType.OciManifest,
      manifestSize: img.manifest.descriptor.size,
      imageBytes: bytesOf(img),
      backedUpAt: '2026-11-26T10:25:33.123Z',
      runId: 'run-1',
    });

    expect(await store.listRepositories()).toEqual(['team/app']);
    expect(await repo.listImages()).toEqual([
      { tag: 'v1', digest: img.manifest.descriptor.digest, sizeBytes: bytesOf(img), time: '2026-11-26T10:25:33.123Z' },
    ]);
    expect((await repo.getManifest({ tag: 'v1' })).bytes).toEqual(img.manifest.bytes);
    expect((await repo.getManifest({ digest: img.manifest.descriptor.digest })).descriptor).toEqual(img.manifest.descriptor);
    expect(await readAll(await repo.openBlob(img.blobs[1]!.descriptor))).toEqual(img.blobs[1]!.bytes);
    await expect(repo.getManifest({ tag: 'v2' })).rejects.toBeInstanceOf(ManifestNotFoundError);

    // The same image under another repository and tag stores no new blob, only a record.
    const blobCount = (await keys(objects, 'blobs/')).length;
    await putImage(store, 'other', img, 'latest');
    expect((await keys(objects, 'blobs/')).length).toBe(blobCount);
    expect(await store.listRepositories()).toEqual(['other', 'team/app']);
    expect(await store.blobUsage()).toEqual({ blobs: blobCount, bytes: bytesOf(img) });
    expect(await store.describe([{ repository: 'other', tag: 'latest' }])).toMatchObject([
      { repository: 'other', tag: 'latest', imageBytes: bytesOf(img) },
    ]);
  });

  it('keeps one record per tag value; asOf resolves the value at that time', async () => {
    const objects = await backend.make();
    const time = clock('2026-03-01T00:00:00.000Z');
    const store = new BackupStore(objects, { now: time.now });
    const v1 = image([blob()]);
    const v2 = image([blob()]);
    await putImage(store, 'app', v1, 'latest');
    time.set('2026-03-01T00:00:10.000Z');
    await putImage(store, 'app', v1, 'latest'); // unchanged: no second record
    expect(await keys(objects, 'catalog/app/_tags/latest/')).toHaveLength(1);
    time.set('2026-03-02T00:00:00.000Z');
    await putImage(store, 'app', v2, 'latest'); // moved: a second record
    const recordKeys = await keys(objects, 'catalog/app/_tags/latest/');
    expect(recordKeys).toEqual([
      `catalog/app/_tags/latest/20260301T000000000Z_${v1.manifest.descriptor.digest.slice(7)}.json`,
      `catalog/app/_tags/latest/20260302T000000000Z_${v2.manifest.descriptor.digest.slice(7)}.json`,
    ]);

    expect((await store.repository('app').listImages()).map((i) => i.digest)).toEqual([v2.manifest.descriptor.digest]);
    const before = store.atTime('2026-03-01T12:00:00Z');
    expect((await before.repository('app').listImages()).map((i) => i.digest)).toEqual([v1.manifest.descriptor.digest]);
    expect((await before.repository('app').getManifest({ tag: 'latest' })).descriptor.digest).toBe(v1.manifest.descriptor.digest);
    const exact = new BackupStore(objects, { asOf: '2026-03-02T00:00:00.000Z' });
    expect((await exact.repository('app').listImages()).map((i) => i.digest)).toEqual([v2.manifest.descriptor.digest]);
    const beforeAll = store.atTime('2026-02-01T00:00:00Z');
    expect(await beforeAll.repository('app').listImages()).toEqual([]);
    expect(await beforeAll.listRepositories()).toEqual([]);
    await expect(beforeAll.repository('app').getManifest({ tag: 'latest' })).rejects.toBeInstanceOf(ManifestNotFoundError);
    await expect(before.repository('app').putManifest(v1.manifest, { tag: 'x' })).rejects.toBeInstanceOf(ReadOnlyStoreError);

    // Moving back writes a third record, and the history shows all three.
    time.set('2026-03-03T00:00:00.000Z');
    await putImage(store, 'app', v1, 'latest');
    const history = await store.history('app');
    expect(history.tags.map((t) => [t.tag, t.records.map((r) => r.digest)])).toEqual([
      ['latest', [v1.manifest.descriptor.digest, v2.manifest.descriptor.digest, v1.manifest.descriptor.digest]],
    ]);

    // A clock that steps back still orders the history.
    time.set('2026-01-01T00:00:00.000Z');
    await putImage(store, 'app', v2, 'latest');
    expect((await store.repository('app').listImages()).map((i) => i.digest)).toEqual([v2.manifest.descriptor.digest]);
  });

  it('refuses a manifest whose blobs are not all stored', async () => {
    const objects = await backend.make();
    const store = new BackupStore(objects);
    const img = image([blob(), blob()]);
    const repo = store.repository('app');
    for (const b of img.blobs.slice(0, 2)) await repo.putBlob(b.descriptor, Readable.from([b.bytes]));
    const error = await repo.putManifest(img.manifest, { tag: 'v1' }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(IncompleteImageError);
    expect((error as IncompleteImageError).missing).toEqual([img.blobs[2]!.descriptor.digest]);
    expect(await repo.hasManifest(img.manifest.descriptor)).toBe(false);
    expect(await keys(objects, 'catalog/')).toEqual([]);

    // An index whose child manifest is missing is refused the same way.
    const idx = index([{ manifest: img.manifest, platform: { os: 'linux', architecture: 'amd64' } }]);
    await expect(repo.putManifest(idx, { tag: 'multi' })).rejects.toBeInstanceOf(IncompleteImageError);
  });

  it('commits no blob when the body fails verification', async () => {
    const store = new BackupStore(await backend.make());
    const good = blob();
    const repo = store.repository('app');
    await expect(repo.putBlob(good.descriptor, Readable.from([randomBytes(good.descriptor.size)]))).rejects.toBeInstanceOf(
      DigestMismatchError,
    );
    expect(await repo.hasBlob(good.descriptor)).toBe(false);
    await repo.putBlob(good.descriptor, Readable.from([good.bytes]));
    await repo.putBlob(good.descriptor, Readable.from([good.bytes])); // already present: drained, not rewritten
    expect(await repo.hasBlob(good.descriptor)).toBe(true);
  });

  it('records an index with platforms and size, and lists untagged images but not index children', async () => {
    const objects = await backend.make();
    const store = new BackupStore(objects);
    const shared = blob();
    const amd = image([shared, blob()], 'amd64');
    const arm = image([shared, blob()], 'arm64');
    const repo = store.repository('multi');
    // What the copy engine does: children by digest (no tag), then the index with its tag.
    await putImage(store, 'multi', amd);
    await putImage(store, 'multi', arm);
    const idx = index([
      { manifest: amd.manifest, platform: { os: 'linux', architecture: 'amd64' } },
      { manifest: arm.manifest, platform: { os: 'linux', architecture: 'arm64', variant: 'v8' } },
    ]);
    await repo.putManifest(idx, { tag: 'v1' });
    const loose = image([blob()]);
    await putImage(store, 'multi', loose, { digest: loose.manifest.descriptor.digest }); // an untagged image backed up by digest

    const [record] = await store.describe([{ repository: 'multi', tag: 'v1' }]);
    expect(record).toMatchObject({
      mediaType: MediaType.OciIndex,
      platforms: ['linux/amd64', 'linux/arm64/v8'],
      imageBytes: idx.descriptor.size + bytesOf(amd) + bytesOf(arm) - shared.descriptor.size,
    });
    const listing = await repo.listImages();
    expect(listing.map((l) => [l.tag, l.digest])).toEqual([
      ['v1', idx.descriptor.digest],
      [undefined, loose.manifest.descriptor.digest],
    ]);
    expect((await repo.getManifest({ digest: loose.manifest.descriptor.digest })).bytes).toEqual(loose.manifest.bytes);
  });

  it('refuses hostile repository names and tags', async () => {
    const store = new BackupStore(await backend.make());
    for (const name of ['../x', 'a/../../b', 'A', '_tags', 'a/_tags/b', '/abs', 'a//b', '']) {
      expect(() => store.repository(name), name).toThrow(InvalidNameError);
    }
    const img = image([]);
    for (const tag of ['../../x', 'a/b', '.hidden', '-x', '']) {
      await expect(store.repository('app').putManifest(img.manifest, { tag }), tag).rejects.toBeInstanceOf(InvalidNameError);
      await expect(store.repository('app').getManifest({ tag }), tag).rejects.toBeInstanceOf(InvalidNameError);
    }
  });

  it('verifyStore reports corrupt and missing blobs per image, hashing each blob once', async () => {
    const objects = await backend.make();
    const store = new BackupStore(objects);
    const shared = blob(randomBytes(3000));
    const a = image([shared, blob()]);
    const b = image([shared, blob()]);
    await putImage(store, 'app', a, 'a');
    await putImage(store, 'app', b, 'b');
    await putImage(store, 'other/app', a, 'same');

    const clean = await verifyStore(store);
    expect(clean.problems).toEqual([]);
    // 2 manifests + 2 configs + shared + 2 own layers, each once although `a` is referenced twice.
    expect(clean.checkedBlobs).toBe(7);
    expect(clean.checkedImages).toBe(3);
    const distinct = new Map([...a.blobs, ...b.blobs].map((x) => [x.descriptor.digest, x.descriptor.size]));
    expect(clean.checkedBytes).toBe(
      a.manifest.descriptor.size + b.manifest.descriptor.size + [...distinct.values()].reduce((n, s) => n + s, 0),
    );

    // Same size, different bytes: only hashing finds it.
    const flipped = Buffer.from(shared.bytes);
    flipped[100] = flipped[100]! ^ 0xff;
    await backend.tamper(objects, `blobs/sha256/${shared.descriptor.digest.slice(7)}`, flipped);
    const ownB = b.blobs[2]!;
    await objects.delete(`blobs/sha256/${ownB.descriptor.digest.slice(7)}`);

    const report = await verifyStore(store, { concurrency: 2 });
    expect(report.problems.map((p) => [p.repository, p.tag, p.blob, p.problem])).toEqual(
      [
        ['app', 'a', shared.descriptor.digest, 'corrupt'],
        ['app', 'b', ownB.descriptor.digest, 'missing'],
        ['app', 'b', shared.descriptor.digest, 'corrupt'],
        ['other/app', 'same', shared.descriptor.digest, 'corrupt'],
      ].sort((x, y) => `${x[0]} ${x[1]} ${x[2]}`.localeCompare(`${y[0]} ${y[1]} ${y[2]}`)),
    );
    const corrupt = report.problems.find((p) => p.problem === 'corrupt')!;
    expect(corrupt.digest).toBe(a.manifest.descriptor.digest);
    expect(corrupt.detail).toContain('hashes to sha256:');
    expect(report.checkedBlobs).toBe(6);
  });
});

describe('openStore', () => {
  it('maps URLs and paths to backends and refuses anything else', async () => {
    const s3 = openStore('s3://my-bucket/some/prefix/');
    expect(s3).toBeInstanceOf(S3ObjectStore);
    expect(s3.description).toBe('s3://my-bucket/some/prefix');
    expect((s3 as S3ObjectStore).prefix).toBe('some/prefix/');
    expect(openStore('s3://my-bucket').description).toBe('s3://my-bucket');
    const dir = await tempDir('url');
    expect(openStore(`file://${dir}`)).toBeInstanceOf(FileSystemObjectStore);
    expect((openStore(`file://${dir}`) as FileSystemObjectStore).root).toBe(dir);
    expect((openStore(dir) as FileSystemObjectStore).root).toBe(dir);
    expect((openStore('relative/dir') as FileSystemObjectStore).root).toBe(join(process.cwd(), 'relative/dir'));
    for (const bad of ['http://example.com/x', 'gs://bucket', 's3://', 's3://Bad_Bucket/x', 's3://bucket/../x', '', 'file://host/dir']) {
      expect(() => openStore(bad), bad).toThrow(StoreUrlError);
    }
  });

  it('a directory store created from a URL works end to end', async () => {
    const dir = await tempDir('url-e2e');
    const store = openStore(`file://${dir}`);
    await store.put('a/b', Buffer.from('x'));
    expect(await readFile(join(dir, 'a', 'b'), 'utf8')).toBe('x');
  });
});
