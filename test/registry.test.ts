// The OCI registry client and the ECR endpoint against real services: Debian's docker-registry
// (plain and htpasswd), skopeo as an independent client to check what we pushed, moto for the ECR
// control plane. Behaviour a real registry cannot be made to show (redirects to another origin,
// 503s, schema 1, stalls) is played by small scripted loopback servers, and says so in the test name.
import { randomBytes } from 'node:crypto';
import { createServer, request as httpRequest, type IncomingMessage, type ServerResponse } from 'node:http';
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import { text } from 'node:stream/consumers';
import { DescribeImagesCommand, DescribeRepositoriesCommand, GetAuthorizationTokenCommand, PutImageCommand } from '@aws-sdk/client-ecr';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { DigestMismatchError, sha256Digest } from '../core/model/digest.ts';
import { manifestFromBytes, MediaType, UnsupportedManifestError, type Descriptor, type Manifest } from '../core/model/manifest.ts';
import { authFileCredentials, authFilePaths } from '../core/registry/credentials.ts';
import { EcrAuthorization, EcrEndpoint, type EcrClientLike } from '../core/registry/ecr.ts';
import {
  InvalidReferenceError,
  RegistryAuthError,
  RegistryConfigError,
  RegistryError,
  RegistryNotFoundError,
} from '../core/registry/errors.ts';
import { RegistryEndpoint, type RegistryEndpointOptions } from '../core/registry/registry.ts';
import { applyAwsEnv, startMoto, type TestMoto } from './harness/moto.ts';
import { tempDir } from './harness/process.ts';
import { startRegistry, type TestRegistry } from './harness/registry.ts';
import { startTokenRegistry } from './harness/token-server.ts';

const ECR_USER = 'AWS';
const ECR_PASSWORD = '123456789012-auth-token'; // what moto's GetAuthorizationToken hands out
const FAST_RETRY = { retry: { maxAttempts: 4, baseDelayMs: 10, maxDelayMs: 50, maxRetryAfterMs: 5_000 } };

let plain: TestRegistry;
let secured: TestRegistry;
let moto: TestMoto;
let restoreEnv: () => void;
const cleanups: (() => Promise<unknown>)[] = [];

beforeAll(async () => {
  [plain, secured, moto] = await Promise.all([startRegistry(), startRegistry({ username: ECR_USER, password: ECR_PASSWORD }), startMoto()]);
  restoreEnv = applyAwsEnv(moto.env);
});

afterAll(async () => {
  restoreEnv?.();
  await Promise.allSettled(cleanups.map((c) => c()));
  await Promise.allSettled([plain?.stop(), secured?.stop(), moto?.stop()]);
});

/** An endpoint closed after the tests; anonymous unless given credentials (never the machine's auth files). */
function endpoint(url: string, options: RegistryEndpointOptions = {}): RegistryEndpoint {
  const e = new RegistryEndpoint(url, { credentials: { get: async () => undefined }, ...options });
  cleanups.push(() => e.close());
  return e;
}

// ---- content ----------------------------------------------------------------------------------------

interface Blob {
  descriptor: Descriptor;
  bytes: Buffer;
}

function blob(bytes: Buffer, mediaType = 'application/vnd.oci.image.layer.v1.tar+gzip'): Blob {
  return { descriptor: { mediaType, digest: sha256Digest(bytes), size: bytes.length }, bytes };
}

function configBlob(): Blob {
  const config = { architecture: 'amd64', os: 'linux', rootfs: { type: 'layers', diff_ids: [] }, nonce: randomBytes(8).toString('hex') };
  return blob(Buffer.from(JSON.stringify(config)), MediaType.OciImageConfig);
}

function manifestOf(json: unknown): Manifest {
  return manifestFromBytes(Buffer.from(JSON.stringify(json, null, 3))); // odd indent: bytes must survive as given
}

function imageManifest(config: Blob, layers: Blob[]): Manifest {
  return manifestOf({
    schemaVersion: 2,
    mediaType: MediaType.OciManifest,
    config: config.descriptor,
    layers: layers.map((l) => l.descriptor),
  });
}

/** Pushes a config and two small random layers plus their manifest; returns all of it. */
async function pushImage(
  e: RegistryEndpoint | EcrEndpoint,
  repository: string,
  tag?: string,
): Promise<{ manifest: Manifest; blobs: Blob[] }> {
  const repo = e.repository(repository);
  const blobs = [configBlob(), blob(randomBytes(1500)), blob(randomBytes(70_000))];
  for (const b of blobs) await repo.putBlob(b.descriptor, Readable.from([b.bytes]));
  const manifest = imageManifest(blobs[0]!, blobs.slice(1));
  await repo.putManifest(manifest, tag === undefined ? undefined : { tag });
  return { manifest, blobs };
}

async function skopeoRaw(host: string, reference: string, creds?: string): Promise<Buffer> {
  const args = [
    'inspect',
    '--raw',
    '--tls-verify=false',
    ...(creds ? ['--creds', creds] : ['--no-creds']),
    `docker://${host}/${reference}`,
  ];
  const { stdout } = await execa('skopeo', args, { encoding: 'buffer', stripFinalNewline: false });
  return Buffer.from(stdout);
}

// ---- loopback servers ---------------------------------------------------------------------------------

interface Scripted {
  url: string;
  requests: { method: string; path: string; headers: IncomingMessage['headers']; status?: number }[];
}

/** A node http server on loopback answering with `handler`; every request is recorded. */
async function serve(handler: (req: IncomingMessage, res: ServerResponse, server: Scripted) => void): Promise<Scripted> {
  const scripted: Scripted = { url: '', requests: [] };
  const server = createServer((req, res) => {
    scripted.requests.push({ method: req.method!, path: req.url!, headers: req.headers });
    handler(req, res, scripted);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  scripted.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  cleanups.push(() => {
    server.closeAllConnections();
    return new Promise((resolve) => server.close(resolve));
  });
  return scripted;
}

/** Forwards to a real registry, recording each request with the status it got (Host kept, so Locations point back here). */
async function recordingProxy(target: string): Promise<Scripted> {
  return serve((req, res, scripted) => {
    const entry = scripted.requests.at(-1)!;
    const upstream = httpRequest(new URL(req.url!, target), { method: req.method, headers: req.headers }, (answer) => {
      entry.status = answer.statusCode;
      res.writeHead(answer.statusCode!, answer.headers);
      answer.pipe(res);
    });
    req.pipe(upstream);
  });
}

function ociError(res: ServerResponse, status: number, code: string, message: string, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': 'application/json', ...headers });
  res.end(JSON.stringify({ errors: [{ code, message }] }));
}

// ---- tests ---------------------------------------------------------------------------------------------

describe('RegistryEndpoint against docker-registry', () => {
  it('pushes an OCI image and an index byte for byte, as skopeo sees them', async () => {
    const e = endpoint(plain.url);
    const amd = await pushImage(e, 'push/app');
    const arm = await pushImage(e, 'push/app');
    const index = manifestOf({
      schemaVersion: 2,
      mediaType: MediaType.OciIndex,
      manifests: [
        { ...amd.manifest.descriptor, platform: { architecture: 'amd64', os: 'linux' } },
        { ...arm.manifest.descriptor, platform: { architecture: 'arm64', os: 'linux' } },
      ],
    });
    const repo = e.repository('push/app');
    await repo.putManifest(amd.manifest, { tag: 'amd' });
    await repo.putManifest(index, { tag: 'multi' });

    expect(await skopeoRaw(plain.host, 'push/app:multi')).toEqual(index.bytes);
    expect(await skopeoRaw(plain.host, 'push/app:amd')).toEqual(amd.manifest.bytes);
    expect(await skopeoRaw(plain.host, `push/app@${arm.manifest.descriptor.digest}`)).toEqual(arm.manifest.bytes);

    const byTag = await repo.getManifest({ tag: 'multi' });
    expect(byTag.bytes).toEqual(index.bytes);
    expect(byTag.descriptor).toEqual(index.descriptor);
    const byDigest = await repo.getManifest({ digest: amd.manifest.descriptor.digest });
    expect(byDigest.descriptor).toEqual(amd.manifest.descriptor);
    expect(await repo.hasManifest(index.descriptor)).toBe(true);
    expect(await repo.hasManifest(blob(randomBytes(10)).descriptor)).toBe(false);
    const layer = amd.blobs[2]!;
    expect(await repo.hasBlob(layer.descriptor)).toBe(true);
    expect(Buffer.concat(await (await repo.openBlob(layer.descriptor)).toArray())).toEqual(layer.bytes);
    expect((await repo.listImages()).map((l) => l.tag).sort()).toEqual(['amd', 'multi']);
  });

  it('pages through the catalog with Link headers (n=2 against the real registry)', async () => {
    const proxy = await recordingProxy(plain.url);
    const e = endpoint(proxy.url, { pageSize: 2 });
    for (const name of ['paged/a', 'paged/b', 'paged/c', 'paged/d', 'paged/e']) await pushImage(e, name, 'v1');
    const repositories = await e.listRepositories();
    expect(repositories.filter((r) => r.startsWith('paged/'))).toEqual(['paged/a', 'paged/b', 'paged/c', 'paged/d', 'paged/e']);
    expect(new Set(repositories).size).toBe(repositories.length);
    const pages = proxy.requests.filter((r) => r.path.startsWith('/v2/_catalog'));
    expect(pages.length).toBeGreaterThanOrEqual(3);
    expect(pages.every((r) => r.status === 200 && r.path.includes('n=2'))).toBe(true);
    await expect(e.repository('paged/missing').listImages()).rejects.toThrow(RegistryNotFoundError);
  });

  it('uploads a blob larger than the monolithic threshold in bounded PATCH chunks, and commits nothing on a bad body', async () => {
    const proxy = await recordingProxy(plain.url);
    const e = endpoint(proxy.url, { monolithicMaxBytes: 1024 * 1024, chunkBytes: 3 * 1024 * 1024 });
    const big = blob(randomBytes(9 * 1024 * 1024 + 123));
    // Fed in odd-sized pieces so re-chunking is exercised.
    const pieces = Array.from({ length: Math.ceil(big.bytes.length / 700_001) }, (_, i) =>
      big.bytes.subarray(i * 700_001, (i + 1) * 700_001),
    );
    await e.repository('chunked/app').putBlob(big.descriptor, Readable.from(pieces));

    const patches = proxy.requests.filter((r) => r.method === 'PATCH');
    expect(patches).toHaveLength(4);
    expect(patches.map((r) => r.headers['content-range'])).toEqual([
      '0-3145727',
      '3145728-6291455',
      '6291456-9437183',
      `9437184-${big.bytes.length - 1}`,
    ]);
    const fetched = await fetch(`${plain.url}/v2/chunked/app/blobs/${big.descriptor.digest}`);
    expect(Buffer.from(await fetched.arrayBuffer()).equals(big.bytes)).toBe(true); // (toEqual on 9 MiB is very slow)

    const liar = blob(randomBytes(2 * 1024 * 1024));
    const other = randomBytes(liar.bytes.length);
    await expect(e.repository('chunked/app').putBlob(liar.descriptor, Readable.from([other]))).rejects.toThrow(DigestMismatchError);
    await expect(e.repository('chunked/app').putBlob(liar.descriptor, Readable.from([other.subarray(0, 100)]))).rejects.toThrow(
      DigestMismatchError,
    );
    expect(await e.repository('chunked/app').hasBlob(liar.descriptor)).toBe(false);
    expect(proxy.requests.filter((r) => r.method === 'DELETE').length).toBe(2); // the sessions were cancelled
  });

  it('mounts a blob from another repository it has seen (registry answers 201) instead of uploading', async () => {
    const proxy = await recordingProxy(plain.url);
    const e = endpoint(proxy.url);
    const layer = blob(randomBytes(50_000));
    await e.repository('mount/a').putBlob(layer.descriptor, Readable.from([layer.bytes]));

    expect(await e.repository('mount/b').mountBlob(layer.descriptor)).toBe(true);

    const mount = proxy.requests.find((r) => r.path.startsWith('/v2/mount/b/blobs/uploads/'));
    expect(mount?.method).toBe('POST');
    expect(new URL(mount!.path, proxy.url).searchParams.get('from')).toBe('mount/a');
    expect(mount?.status).toBe(201);
    expect(proxy.requests.some((r) => r.path.startsWith('/v2/mount/b/') && (r.method === 'PUT' || r.method === 'PATCH'))).toBe(false);
    expect((await fetch(`${plain.url}/v2/mount/b/blobs/${layer.descriptor.digest}`, { method: 'HEAD' })).status).toBe(200);

    // Nothing to mount from: no request, no mount.
    expect(await e.repository('mount/d').mountBlob(blob(randomBytes(10)).descriptor)).toBe(false);
  });

  it('authenticates with Basic credentials (htpasswd), and a wrong password is a clear error without the password', async () => {
    const good = endpoint(secured.url, { credentials: { username: ECR_USER, password: ECR_PASSWORD } });
    const { manifest } = await pushImage(good, 'basic/app', 'v1');
    expect(await skopeoRaw(secured.host, 'basic/app:v1', `${ECR_USER}:${ECR_PASSWORD}`)).toEqual(manifest.bytes);
    expect((await good.repository('basic/app').getManifest({ tag: 'v1' })).bytes).toEqual(manifest.bytes);

    const wrongPassword = 'not-the-password-7f3a';
    const bad = endpoint(secured.url, { credentials: { username: ECR_USER, password: wrongPassword } });
    const error = await bad
      .repository('basic/app')
      .getManifest({ tag: 'v1' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(RegistryAuthError);
    expect((error as Error).message).toContain('basic/app:v1');
    expect((error as Error).message).not.toContain(wrongPassword);
    expect(JSON.stringify(error)).not.toContain(wrongPassword);
    await expect(endpoint(secured.url).listRepositories()).rejects.toThrow(RegistryAuthError);
  });

  it('authenticates with Bearer tokens from a token server: scoped, cached, renewed on 401 (docker-registry with token auth)', async () => {
    const registry = await startTokenRegistry('bob', 'token-pass');
    cleanups.push(() => registry.stop());
    const proxy = await recordingProxy(registry.url);
    const e = endpoint(proxy.url, { credentials: { username: 'bob', password: 'token-pass' } });
    const { manifest, blobs } = await pushImage(e, 'bearer/a', 'v1');
    expect((await e.repository('bearer/a').getManifest({ tag: 'v1' })).bytes).toEqual(manifest.bytes);
    expect(await e.listRepositories()).toEqual(['bearer/a']);
    // One token per scope set, reused for every request with that scope.
    expect(registry.tokenRequests.map((r) => r.scopes.join(' '))).toEqual([
      'repository:bearer/a:pull,push',
      'repository:bearer/a:pull',
      'registry:catalog:*',
    ]);

    // A mount needs pull on the source too: asked for up front, in the same token.
    expect(await e.repository('bearer/b').mountBlob(blobs[1]!.descriptor)).toBe(true);
    expect(registry.tokenRequests.at(-1)?.scopes).toEqual(['repository:bearer/b:pull,push', 'repository:bearer/a:pull']);
    expect(proxy.requests.filter((r) => r.path.startsWith('/v2/bearer/b/')).map((r) => [r.method, r.status])).toEqual([['POST', 201]]);
    expect(await e.repository('bearer/b').hasBlob(blobs[1]!.descriptor)).toBe(true);

    // A token the registry refuses is dropped and fetched again once.
    registry.denyNext = 1;
    const fresh = endpoint(registry.url, { credentials: { username: 'bob', password: 'token-pass' } });
    expect((await fresh.repository('bearer/a').getManifest({ tag: 'v1' })).bytes).toEqual(manifest.bytes);
    expect(registry.denyNext).toBeLessThan(0);

    const wrong = await endpoint(registry.url, { credentials: { username: 'bob', password: 'wrong-token-pass' } })
      .repository('bearer/a')
      .getManifest({ tag: 'v1' })
      .catch((error: unknown) => error);
    expect(wrong).toBeInstanceOf(RegistryAuthError);
    expect((wrong as Error).message).not.toContain('wrong-token-pass');
    await expect(endpoint(registry.url).repository('bearer/a').getManifest({ tag: 'v1' })).rejects.toThrow(RegistryAuthError);
  });

  it('reads credentials from auth files: REGISTRY_AUTH_FILE, then containers auth.json, then docker config', async () => {
    const dir = await tempDir('auth');
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const entry = (password: string) => ({ auth: Buffer.from(`${ECR_USER}:${password}`).toString('base64') });
    await writeFile(join(dir, 'first.json'), JSON.stringify({ auths: { 'other.example': entry('x') } }));
    await writeFile(join(dir, 'docker.json'), JSON.stringify({ auths: { [`https://${secured.host}/v1/`]: entry(ECR_PASSWORD) } }));
    const provider = authFileCredentials(secured.host, [join(dir, 'missing.json'), join(dir, 'first.json'), join(dir, 'docker.json')]);
    expect(await provider.get()).toEqual({ username: ECR_USER, password: ECR_PASSWORD });
    const e = endpoint(secured.url, { credentials: provider });
    expect(await e.listRepositories()).toContain('basic/app');

    expect(authFilePaths({ REGISTRY_AUTH_FILE: '/a.json', XDG_RUNTIME_DIR: '/run/u' }, '/home/u')).toEqual([
      '/a.json',
      '/run/u/containers/auth.json',
      '/home/u/.docker/config.json',
    ]);
    expect(authFilePaths({}, '/home/u')).toEqual(['/home/u/.docker/config.json']);
  });

  it('refuses hostile names and plain http to remote hosts before sending anything (scripted server counts requests)', async () => {
    const server = await serve((_req, res) => res.writeHead(200).end('{}'));
    const e = endpoint(server.url);
    await expect(e.repository('ok/app').getManifest({ tag: '../x' })).rejects.toThrow(InvalidReferenceError);
    await expect(e.repository('ok/app').getManifest({ digest: 'sha256:../../etc' })).rejects.toThrow(InvalidReferenceError);
    await expect(
      e.repository('ok/app').putManifest(manifestOf({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] }), { tag: 'a/b' }),
    ).rejects.toThrow(/invalid tag "a\/b"/);
    expect(() => e.repository('../x')).toThrow(InvalidReferenceError);
    expect(() => e.repository('Upper/Case')).toThrow(InvalidReferenceError);
    expect(server.requests).toHaveLength(0);

    expect(() => new RegistryEndpoint('http://registry.example.com')).toThrow(RegistryConfigError);
    expect(() => new RegistryEndpoint('ftp://127.0.0.1')).toThrow(RegistryConfigError);
    expect(() => new RegistryEndpoint('https://user:secret@registry.example.com')).toThrow(/must not embed credentials/);
    expect(() => new RegistryEndpoint('https://registry.example.com/v2/')).toThrow(RegistryConfigError);
    expect(new RegistryEndpoint('http://registry.example.com', { insecure: true }).description).toBe('docker://registry.example.com');
  });
});

describe('RegistryEndpoint against scripted loopback servers', () => {
  it('pages through tags with relative Link headers, and refuses a Link to another origin (scripted server: docker-registry 2.8 ignores n for tags)', async () => {
    const server = await serve((req, res) => {
      const url = new URL(req.url!, 'http://x');
      if (url.pathname === '/v2/') return res.writeHead(200).end();
      const page = Number(url.searchParams.get('last')?.slice(1) ?? -1) + 1;
      const link =
        url.pathname === '/v2/evil/app/tags/list'
          ? '<http://169.254.169.254/v2/evil/app/tags/list?last=t0>; rel="next"'
          : page < 2
            ? `</v2/paged/app/tags/list?n=${url.searchParams.get('n')}&last=t${page}>; rel="next"`
            : undefined;
      res.writeHead(200, { 'content-type': 'application/json', ...(link ? { link } : {}) });
      res.end(JSON.stringify({ name: 'paged/app', tags: [`t${page}`] }));
    });
    const e = endpoint(server.url, { pageSize: 1 });
    expect(await e.repository('paged/app').listImages()).toEqual([{ tag: 't0' }, { tag: 't1' }, { tag: 't2' }]);
    expect(server.requests.filter((r) => r.path.includes('/tags/list')).map((r) => r.path)).toEqual([
      '/v2/paged/app/tags/list?n=1',
      '/v2/paged/app/tags/list?n=1&last=t0',
      '/v2/paged/app/tags/list?n=1&last=t1',
    ]);
    await expect(e.repository('evil/app').listImages()).rejects.toThrow(/foreign location/);
  });

  it('follows a blob redirect to another origin without the Authorization header (scripted registry + storage)', async () => {
    const layer = blob(randomBytes(4096));
    const storage = await serve((_req, res) => res.writeHead(200, { 'content-length': String(layer.bytes.length) }).end(layer.bytes));
    const basic = `Basic ${Buffer.from('u:p').toString('base64')}`;
    const registry = await serve((req, res) => {
      if (req.headers.authorization !== basic)
        return ociError(res, 401, 'UNAUTHORIZED', 'authentication required', { 'www-authenticate': 'Basic realm="r"' });
      res.writeHead(307, { location: `${storage.url}/bucket/layer?X-Amz-Signature=abc` }).end();
    });
    const e = endpoint(registry.url, { credentials: { username: 'u', password: 'p' } });
    const body = await e.repository('redirect/app').openBlob(layer.descriptor);
    expect(Buffer.concat(await body.toArray())).toEqual(layer.bytes);
    expect(registry.requests.at(-1)?.headers.authorization).toBe(basic);
    expect(storage.requests).toHaveLength(1);
    expect(storage.requests[0]!.headers.authorization).toBeUndefined();
    expect(storage.requests[0]!.path).toBe('/bucket/layer?X-Amz-Signature=abc');
  });

  it('retries 503 honouring Retry-After, then succeeds; gives up after bounded attempts (scripted server)', async () => {
    const manifest = manifestOf({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });
    let failures = 2;
    const server = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      if (req.url!.startsWith('/v2/flaky/') && failures-- > 0) {
        return ociError(res, 503, 'UNAVAILABLE', 'try later', failures === 1 ? { 'retry-after': '1' } : {});
      }
      if (req.url!.startsWith('/v2/flaky/')) return res.writeHead(200, { 'content-type': MediaType.OciIndex }).end(manifest.bytes);
      if (req.url!.startsWith('/v2/down/')) return ociError(res, 503, 'UNAVAILABLE', 'down');
      ociError(res, 404, 'MANIFEST_UNKNOWN', 'manifest unknown');
    });
    const e = endpoint(server.url, { http: FAST_RETRY });
    const started = Date.now();
    expect((await e.repository('flaky/app').getManifest({ tag: 'v1' })).bytes).toEqual(manifest.bytes);
    expect(Date.now() - started).toBeGreaterThanOrEqual(950); // Retry-After: 1 was honoured
    expect(server.requests.filter((r) => r.path.startsWith('/v2/flaky/'))).toHaveLength(3);

    const down = await e
      .repository('down/app')
      .getManifest({ tag: 'v1' })
      .catch((error: unknown) => error);
    expect(down).toBeInstanceOf(RegistryError);
    expect(down).toMatchObject({ status: 503, code: 'UNAVAILABLE', retryable: true });
    expect(server.requests.filter((r) => r.path.startsWith('/v2/down/'))).toHaveLength(4);

    const missing = await e
      .repository('gone/app')
      .getManifest({ tag: 'v9' })
      .catch((error: unknown) => error);
    expect(missing).toBeInstanceOf(RegistryNotFoundError);
    expect((missing as Error).message).toBe(
      `docker://${new URL(server.url).host} gone/app:v9: not found (404 MANIFEST_UNKNOWN: manifest unknown)`,
    );
    expect(server.requests.filter((r) => r.path.startsWith('/v2/gone/'))).toHaveLength(1);
  });

  it('retries a blob GET whose connection is reset before any byte was handed over (scripted server)', async () => {
    const layer = blob(randomBytes(2048));
    let resets = 1;
    const server = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      if (resets-- > 0) return req.socket.destroy();
      res.writeHead(200, { 'content-length': String(layer.bytes.length) }).end(layer.bytes);
    });
    const body = await endpoint(server.url, { http: FAST_RETRY }).repository('reset/app').openBlob(layer.descriptor);
    expect(Buffer.concat(await body.toArray())).toEqual(layer.bytes);
    expect(server.requests.filter((r) => r.path.includes('/blobs/'))).toHaveLength(2);
  });

  it('times out a registry that stops answering, and a blob body that stalls (scripted server)', async () => {
    const server = await serve((req, res) => {
      if (req.url === '/v2/') return res.writeHead(200).end();
      if (req.url!.includes('/blobs/')) {
        res.writeHead(200, { 'content-length': '1000' });
        res.write(Buffer.alloc(10)); // then silence
      }
      // manifests: never answer
    });
    const e = endpoint(server.url, {
      http: { headersTimeoutMs: 300, bodyIdleTimeoutMs: 300, retry: { ...FAST_RETRY.retry, maxAttempts: 2 } },
    });
    await expect(e.repository('slow/app').getManifest({ tag: 'v1' })).rejects.toMatchObject({
      code: 'UND_ERR_HEADERS_TIMEOUT',
      retryable: true,
    });
    const body = await e.repository('slow/app').openBlob(blob(Buffer.alloc(1000)).descriptor);
    // The stalled body is resumed (here: the whole body again, the delivered part skipped) until the
    // attempts without progress run out; the error names the blob, the endpoint and the cause.
    await expect(text(body)).rejects.toThrow(
      /GET docker:\/\/127\.0\.0\.1:\d+ slow\/app@sha256:[a-f0-9]{64}: download broke after 10 bytes, 2 attempt\(s\) without progress: .*timeout/i,
    );
  });

  it('refuses a schema 1 manifest with a clear error naming the image (scripted server)', async () => {
    const schema1 = JSON.stringify({
      schemaVersion: 1,
      name: 'legacy/app',
      tag: 'old',
      architecture: 'amd64',
      fsLayers: [],
      history: [],
      signatures: [],
    });
    const server = await serve((_req, res) => res.writeHead(200, { 'content-type': MediaType.DockerSchema1Signed }).end(schema1));
    const error = await endpoint(server.url)
      .repository('legacy/app')
      .getManifest({ tag: 'old' })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(UnsupportedManifestError);
    expect((error as Error).message).toMatch(/legacy\/app:old: Docker schema 1 manifests are not supported/);
  });

  it('rejects manifest bytes that do not match the digest the registry claims (scripted server)', async () => {
    const manifest = manifestOf({ schemaVersion: 2, mediaType: MediaType.OciIndex, manifests: [] });
    const server = await serve((_req, res) =>
      res
        .writeHead(200, { 'content-type': MediaType.OciIndex, 'docker-content-digest': sha256Digest(Buffer.from('other')) })
        .end(manifest.bytes),
    );
    await expect(endpoint(server.url).repository('lying/app').getManifest({ tag: 'v1' })).rejects.toThrow(DigestMismatchError);
  });
});

// ---- ECR ------------------------------------------------------------------------------------------------

describe('EcrEndpoint', () => {
  it('lists repositories and images through moto and moves bytes through the registry with the ECR token', async () => {
    const ecr = new EcrEndpoint({ region: 'us-east-1', registryUrl: secured.url });
    cleanups.push(() => ecr.close());
    await ecr.ensureRepository('team/app');
    await ecr.ensureRepository('team/app'); // already exists: fine
    expect(await ecr.listRepositories()).toContain('team/app');

    // Data plane: credentials come from moto's GetAuthorizationToken (AWS / 123456789012-auth-token).
    const { manifest } = await pushImage(ecr, 'team/app', 'v1');
    const untagged = await pushImage(ecr, 'team/app');
    // Control plane: moto has no registry behind it, so register the images there too (digest passed
    // explicitly: moto computes it wrongly).
    for (const [image, tags] of [
      [manifest, ['v1', 'latest']],
      [untagged.manifest, []],
    ] as const) {
      for (const imageTag of tags.length ? tags : [undefined]) {
        await ecr.client.send(
          new PutImageCommand({
            repositoryName: 'team/app',
            imageManifest: image.bytes.toString('utf8'),
            imageManifestMediaType: image.descriptor.mediaType,
            imageDigest: image.descriptor.digest,
            ...(imageTag ? { imageTag } : {}),
          }),
        );
      }
    }

    const listings = await ecr.repository('team/app').listImages();
    const tagged = listings.filter((l) => l.tag).sort((a, b) => a.tag!.localeCompare(b.tag!));
    expect(tagged.map((l) => [l.tag, l.digest])).toEqual([
      ['latest', manifest.descriptor.digest],
      ['v1', manifest.descriptor.digest],
    ]);
    expect(tagged.every((l) => typeof l.sizeBytes === 'number' && !Number.isNaN(Date.parse(l.time!)))).toBe(true);
    expect(listings.filter((l) => !l.tag).map((l) => l.digest)).toEqual([untagged.manifest.descriptor.digest]);

    const fetched = await ecr.repository('team/app').getManifest({ tag: 'v1' });
    expect(fetched.bytes).toEqual(manifest.bytes);
    expect(await skopeoRaw(secured.host, 'team/app:v1', `${ECR_USER}:${ECR_PASSWORD}`)).toEqual(manifest.bytes);
    await expect(ecr.repository('team/missing').listImages()).rejects.toThrow(RegistryNotFoundError);
  });

  it('pages DescribeRepositories and DescribeImages (mocked ECR client: moto ignores pagination)', async () => {
    const seen: { command: string; nextToken?: string }[] = [];
    const client = {
      async send(command: { input: { nextToken?: string } }) {
        seen.push({ command: command.constructor.name, nextToken: command.input.nextToken });
        const page = Number(command.input.nextToken ?? 0);
        if (command instanceof DescribeRepositoriesCommand) {
          return { repositories: [{ repositoryName: `repo${page}` }], nextToken: page < 2 ? String(page + 1) : undefined };
        }
        if (command instanceof DescribeImagesCommand) {
          const pages = [
            [{ imageDigest: `sha256:${'a'.repeat(64)}`, imageTags: ['v1', 'latest'], imageSizeInBytes: 10, imagePushedAt: new Date(0) }],
            [{ imageDigest: `sha256:${'b'.repeat(64)}`, imageSizeInBytes: 20 }],
          ];
          return { imageDetails: pages[page], nextToken: page < 1 ? String(page + 1) : undefined };
        }
        throw new Error(`unexpected ${command.constructor.name}`);
      },
    } as unknown as EcrClientLike;
    const ecr = new EcrEndpoint({ client, registryId: '210987654321' });
    expect(await ecr.listRepositories()).toEqual(['repo0', 'repo1', 'repo2']);
    expect(await ecr.repository('team/app').listImages()).toEqual([
      { tag: 'v1', digest: `sha256:${'a'.repeat(64)}`, sizeBytes: 10, time: '1970-01-01T00:00:00.000Z' },
      { tag: 'latest', digest: `sha256:${'a'.repeat(64)}`, sizeBytes: 10, time: '1970-01-01T00:00:00.000Z' },
      { digest: `sha256:${'b'.repeat(64)}`, sizeBytes: 20 },
    ]);
    expect(seen.map((s) => s.nextToken)).toEqual([undefined, '1', '2', undefined, '1']);
    expect(ecr.description).toBe('ecr://210987654321/us-east-1');
  });

  it('renews the authorization token before it expires, once for concurrent callers (mocked ECR client)', async () => {
    let calls = 0;
    const lifetimeMs = 12 * 60 * 60 * 1000;
    const client = {
      async send(command: unknown) {
        if (!(command instanceof GetAuthorizationTokenCommand)) throw new Error('unexpected command');
        calls += 1;
        await new Promise((r) => setTimeout(r, 20));
        return {
          authorizationData: [
            {
              authorizationToken: Buffer.from(`AWS:token-${calls}`).toString('base64'),
              proxyEndpoint: 'https://1.dkr.ecr.us-east-1.amazonaws.com',
              expiresAt: new Date(Date.now() + lifetimeMs),
            },
          ],
        };
      },
    } as unknown as EcrClientLike;
    const provider = new EcrAuthorization(client, undefined, 30 * 60 * 1000);
    const [a, b] = await Promise.all([provider.get(), provider.get()]);
    expect([a.password, b.password, calls]).toEqual(['token-1', 'token-1', 1]);
    vi.useFakeTimers({ toFake: ['Date'] });
    try {
      vi.setSystemTime(Date.now() + 11 * 60 * 60 * 1000); // 1 h left: still good
      expect((await provider.get()).password).toBe('token-1');
      vi.setSystemTime(Date.now() + 40 * 60 * 1000); // 20 min left: inside the 30-minute margin
      const [c, d] = await Promise.all([provider.get(), provider.get()]);
      expect([c.password, d.password, calls]).toEqual(['token-2', 'token-2', 2]);
    } finally {
      vi.useRealTimers();
    }
    // Without registryUrl the registry API is the token's proxyEndpoint.
    expect((await new EcrEndpoint({ client }).registry()).description).toBe('docker://1.dkr.ecr.us-east-1.amazonaws.com');
  });
});
