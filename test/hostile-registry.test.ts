// Hostile input from a registry (scripted hostile registry): invalid names, endless and huge listings,
// trickling bodies, errors echoing credentials, duplicate index children; for each the clear error, the
// exit code, that the rest of the run completed, and that nothing secret reaches any output.
import { mkdir, readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { PlanSkip } from '../core/engine/plan.ts';
import { RegistryEndpoint } from '../core/registry/registry.ts';
import { BackupStore } from '../core/store/backup-store.ts';
import { FileSystemObjectStore } from '../core/store/filesystem.ts';
import { verifyStore } from '../core/store/verify.ts';
import { HostileRegistry, json, OCI_INDEX } from './harness/hostile-registry.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { LONG_NAME, registry, tree, useHostileRegistry, work } from './harness/hostile-corpus.ts';

useHostileRegistry();

const SECRET = 'c0ffee1234567890abcdef1234567890abcdef1234567890abcdef12345678aa';
const BASIC = 'dXNlcjpodW50ZXIyLXNlY3JldA==';

describe('hostile registry', () => {
  it('an invalid repository name in _catalog is skipped and reported; every other repository is backed up (exit 1)', async () => {
    const store = join(work, 'names', 'store');
    await mkdir(join(work, 'names'));
    const backup = await runCliJson<{ counts: { copied: number; failed: number }; repositoryNotes?: PlanSkip[] }>([
      'backup',
      '--registry',
      registry.url,
      '--to',
      store,
    ]);
    expect(backup.exitCode, backup.stderr).toBe(1);
    expect(backup.json.counts).toMatchObject({ copied: 4, failed: 0 });
    const skipped = backup.json.repositoryNotes!.filter((n) => n.action === 'skipped');
    expect(skipped.map((n) => n.repository).sort()).toEqual(
      [`"${'c'.repeat(100)}/${'d'.repeat(156)}"`, '"../../etc"', '"UPPER/case"'].sort(),
    );
    expect(skipped[0]!.problems![0]).toMatch(/not a valid repository name .*left out of the run/);
    // Nothing outside the store: the only entry beside it is the store itself.
    expect(await readdir(join(work, 'names'))).toEqual(['store']);
    const list = await runCliJson<{ repository: string }[]>(['list', '--from', store]);
    expect(list.json.map((e) => e.repository)).toContain(LONG_NAME);
  });

  it('an endless Link: rel=next listing fails at the page limit instead of running forever', async () => {
    let page = 0;
    const endless = new HostileRegistry();
    endless.routes.push((_req, res, url) => {
      if (url.pathname !== '/v2/_catalog') return false;
      page++;
      json(res, 200, { repositories: [`r${page}`] }, { link: `</v2/_catalog?last=r${page}&n=1>; rel="next"` });
      return true;
    });
    await endless.start();
    try {
      const endpoint = new RegistryEndpoint(endless.url, { listing: { maxPages: 50 } });
      await expect(endpoint.listRepositories()).rejects.toThrow(/goes on past 50 pages/);
      expect(page).toBe(50);
      await endpoint.close();
    } finally {
      await endless.stop();
    }
  });

  it('a listing page of 200,000 tags is read (no call stack overflow)', async () => {
    const tags = Array.from({ length: 200_000 }, (_, i) => `t${i}`);
    registry.routes.push((_req, res, url) => {
      if (url.pathname !== '/v2/huge/tags/list') return false;
      json(res, 200, { name: 'huge', tags });
      return true;
    });
    const endpoint = new RegistryEndpoint(registry.url);
    expect(await endpoint.repository('huge').listImages()).toHaveLength(200_000);
    await endpoint.close();
  });

  it('a body trickling one byte at a time hits the small-body deadline', async () => {
    registry.routes.push((_req, res, url) => {
      if (url.pathname !== '/v2/slow/manifests/v1') return false;
      res.writeHead(200, { 'content-type': 'application/vnd.oci.image.manifest.v1+json' });
      const timer = setInterval(() => res.write(' '), 100);
      res.on('close', () => clearInterval(timer));
      return true;
    });
    const endpoint = new RegistryEndpoint(registry.url, {
      http: { smallBodyDeadlineMs: 1000, retry: { maxAttempts: 1, baseDelayMs: 1, maxDelayMs: 1, maxRetryAfterMs: 1 } },
    });
    await expect(endpoint.repository('slow').getManifest({ tag: 'v1' })).rejects.toThrow(/response body not complete after 1 s/);
    await endpoint.close();
  });

  it('an error that echoes credentials reaches no output: CLI --json, report.json and report.md are redacted', async () => {
    registry.tag('apps/echo', 'v1', registry.addImage('echo').digest);
    registry.routes.push((_req, res, url) => {
      if (!url.pathname.startsWith('/v2/apps/echo/manifests/')) return false;
      json(res, 400, {
        errors: [
          {
            code: 'MANIFEST_INVALID',
            message: `bad request Authorization: Basic ${BASIC} from https://x.s3.amazonaws.com/l?X-Amz-Signature=${SECRET}`,
          },
        ],
      });
      return true;
    });
    const store = join(work, 'echo');
    const backup = await runCli(['backup', '--registry', registry.url, '--to', store, '--repositories', 'apps/echo', '--json']);
    expect(backup.exitCode).toBe(1);
    expect(backup.stdout).toContain('MANIFEST_INVALID');
    expect(backup.stdout).toContain('[REDACTED]');
    const written = (await tree(store)).filter((p) => p.startsWith('runs/') && /report\.(json|md)$/.test(p));
    expect(written).toHaveLength(2);
    for (const text of [backup.stdout, backup.stderr, ...(await Promise.all(written.map((p) => readFile(join(store, p), 'utf8'))))]) {
      expect(text).not.toContain(SECRET);
      expect(text).not.toContain(BASIC);
    }
  });

  it('an index listing the same child twice per level is copied with one request per manifest', async () => {
    let child = registry.addImage('nested');
    const depth = 12; // walked naively: 2^12 child fetches
    for (let level = 0; level < depth; level++) {
      const entry = {
        mediaType: child.mediaType,
        digest: child.digest,
        size: child.size,
        platform: { os: 'linux', architecture: 'amd64' },
      };
      child = registry.addManifest({ schemaVersion: 2, mediaType: OCI_INDEX, manifests: [entry, entry] }, OCI_INDEX);
    }
    registry.tag('apps/nested', 'v1', child.digest);
    const store = join(work, 'nested');
    const before = registry.count('GET /v2/apps/nested/manifests/');
    const backup = await runCliJson<{ counts: { copied: number } }>([
      'backup',
      '--registry',
      registry.url,
      '--to',
      store,
      '--repositories',
      'apps/nested',
    ]);
    expect(backup.exitCode, backup.stderr).toBe(0);
    expect(backup.json.counts.copied).toBe(1);
    expect(registry.count('GET /v2/apps/nested/manifests/') - before).toBeLessThanOrEqual(depth + 2);
    expect((await verifyStore(new BackupStore(new FileSystemObjectStore(store)))).problems).toEqual([]);
  });
});
