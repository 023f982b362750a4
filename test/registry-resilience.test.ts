// The OCI registry client against scripted loopback servers, for what a real registry cannot be made to
// show: foreign Links and redirects, 503s and resets, stalls, schema 1, lying digests.
import { randomBytes } from 'node:crypto';
import { text } from 'node:stream/consumers';
import { afterAll, describe, expect, it } from 'vitest';
import { DigestMismatchError, sha256Digest } from '../core/model/digest.ts';
import { MediaType, UnsupportedManifestError } from '../core/model/manifest.ts';
import { RegistryError, RegistryNotFoundError } from '../core/registry/errors.ts';
import { blob, manifestOf } from './harness/oci-content.ts';
import { closeAll, endpoint, FAST_RETRY } from './harness/registry-client.ts';
import { ociError, serve } from './harness/scripted-server.ts';

afterAll(closeAll);

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
