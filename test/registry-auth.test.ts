// The OCI registry client's credentials against docker-registry (htpasswd Basic, token-server Bearer,
// auth files), and the names and URLs it refuses before sending anything.
import { rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { MediaType } from '../core/model/manifest.ts';
import { authFileCredentials, authFilePaths } from '../core/registry/credentials.ts';
import { InvalidReferenceError } from '../core/model/reference.ts';
import { RegistryAuthError, RegistryConfigError } from '../core/registry/errors.ts';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { manifestOf, pushImage, skopeoRaw } from './harness/oci-content.ts';
import { tempDir } from './harness/process.ts';
import { closeAll, closeLater, ECR_PASSWORD, ECR_USER, endpoint } from './harness/registry-client.ts';
import { useRegistry } from './harness/services.ts';
import { recordingProxy, serve } from './harness/scripted-server.ts';
import { startTokenRegistry } from './harness/token-server.ts';

const secured = useRegistry({ username: ECR_USER, password: ECR_PASSWORD });

afterAll(async () => {
  await closeAll();
});

describe('RegistryEndpoint against docker-registry', () => {
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
    closeLater(() => registry.stop());
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
    closeLater(() => rm(dir, { recursive: true, force: true }));
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
