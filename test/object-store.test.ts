// ObjectStore against moto's S3 and a temporary directory (one behavioural suite for both): puts that
// verify digests and commit nothing on failure, listing, key safety, S3 checksums, opening by URL.
import { HeadObjectCommand } from '@aws-sdk/client-s3';
import { createHash, randomBytes } from 'node:crypto';
import { readdir, readFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Readable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { digestBase64, DigestMismatchError, sha256Digest } from '../core/model/digest.ts';
import { FileSystemObjectStore } from '../core/store/filesystem.ts';
import { InvalidKeyError, NotFoundError, readAll, readJson, writeJson } from '../core/store/object-store.ts';
import { S3ObjectStore } from '../core/store/s3.ts';
import { openStore, StoreUrlError } from '../core/store/url.ts';
import { tempDir } from './harness/process.ts';
import { backends, BUCKET, keys, MiB, useStoreBackends } from './harness/store-backends.ts';

useStoreBackends();

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
