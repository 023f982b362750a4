// The contract at the edge: what the CLI, the listing Lambda and the worker accept and refuse.
import { describe, expect, it } from 'vitest';
import { InvalidInputError, parseExecutionInput, summarize, type ImageResult } from '../schema/contract.ts';
import { loadWorkerEnvironment, ConfigurationError } from '../schema/environment.ts';
import { matchGlob, matchesFilters } from '../schema/glob.ts';
import { batchItems } from '../core/engine/batching.ts';
import { planImages, UnknownRepositoryError } from '../core/engine/plan.ts';
import type { ImageEndpoint } from '../core/model/endpoint.ts';

describe('execution input', () => {
  it('treats {} (the schedule) as a backup of everything protected', () => {
    expect(parseExecutionInput({})).toEqual({ mode: 'backup' });
    expect(parseExecutionInput(undefined)).toEqual({ mode: 'backup' });
  });

  it.each([
    [{ mode: 'sideways' }, /mode: Invalid option/],
    [{ repositories: 'team/app' }, /repositories: .*expected array/],
    [{ repositories: [''] }, /repositories\.0: Too small/],
    [{ mode: 'restore', asOf: 'yesterday' }, /asOf: Invalid ISO datetime/],
    [{ mode: 'backup', asOf: '2026-01-01T00:00:00Z' }, /asOf: asOf applies to restore runs only/],
    [{ mode: 'restore', target: { accountId: '12' } }, /target\.accountId: must be a 12-digit AWS account id/],
    [{ mode: 'restore', target: { repositoryPrefix: '../x' } }, /target\.repositoryPrefix: not a valid repository prefix/],
    [{ unexpected: true }, /Unrecognized key/],
  ])('refuses %j naming the field', (input, message) => {
    expect(() => parseExecutionInput(input)).toThrow(InvalidInputError);
    expect(() => parseExecutionInput(input)).toThrow(message);
  });

  it('accepts a full restore input', () => {
    const input = {
      mode: 'restore',
      repositories: ['team/**'],
      asOf: '2026-11-01T00:00:00+01:00',
      target: { region: 'eu-west-1', accountId: '123456789012', repositoryPrefix: 'dr/' },
    };
    expect(parseExecutionInput(input)).toEqual(input);
  });
});

describe('worker environment', () => {
  it('names every bad variable in one error', () => {
    expect(() => loadWorkerEnvironment({ STORE_URL: 'ftp://x', BATCH_KEY: '../../etc/passwd' })).toThrow(ConfigurationError);
    expect(() => loadWorkerEnvironment({ STORE_URL: 'ftp://x', BATCH_KEY: '../../etc/passwd' })).toThrow(
      /STORE_URL: .*; BATCH_KEY: must be runs/,
    );
  });
});

describe('globs', () => {
  it('* stays within a segment, ** crosses segments, regex characters are literal', () => {
    expect(matchGlob('team/*', 'team/app')).toBe(true);
    expect(matchGlob('team/*', 'team/app/sub')).toBe(false);
    expect(matchGlob('team/**', 'team/app/sub')).toBe(true);
    expect(matchGlob('v1.?', 'v1.2')).toBe(true);
    expect(matchGlob('v1.?', 'v1x2')).toBe(false);
    expect(matchesFilters('v1.0-rc', ['v1.*'], ['*-rc'])).toBe(false);
    expect(matchesFilters('anything')).toBe(true);
  });

  it('matches in linear time: a pathological glob from an execution input cannot spin the listing', () => {
    // A backtracking matcher needs ~2^k steps here (seconds at k=10, never at k=100); the position
    // set needs name x glob. The test would hit vitest's timeout long before a backtracker answered.
    const glob = `${'*a'.repeat(100)}b`;
    expect(matchGlob(glob, 'a'.repeat(5000))).toBe(false);
    expect(matchGlob(glob, `${'a'.repeat(5000)}b`)).toBe(true);
    expect(matchGlob('**/**/**/**/**/**/**/**/x', `${'a/'.repeat(2000)}y`)).toBe(false);
  });

  it('agrees with the regular-expression reading of the glob on every small case', () => {
    const reference = (glob: string) =>
      new RegExp(
        `^${glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*\*|\*|\?/g, (m) => (m === '**' ? '.*' : m === '*' ? '[^/]*' : '[^/]'))}$`,
      );
    const globs = ['*', '**', 'a*', '*a', 'a?b', 'a/*', 'a/**', '**/b', 'a*/b', '*.*', 'a**b', '?', 'a.b', '*-rc'];
    const names = ['', 'a', 'b', 'ab', 'aab', 'a/b', 'a/c/b', 'a.b', 'axb', 'a/', 'v1-rc', 'a*b', 'abb'];
    for (const g of globs) for (const n of names) expect(matchGlob(g, n), `${g} ~ ${n}`).toBe(reference(g).test(n));
  });
});

describe('batching', () => {
  it('closes a batch at the byte or the image limit and gives an oversized image its own batch', () => {
    const item = (tag: string, sizeBytes: number) => ({ repository: 'r', tag, sizeBytes });
    const batches = batchItems([item('a', 4), item('b', 4), item('c', 4), item('huge', 50), item('d', 1), item('e', 1), item('f', 1)], {
      maxBytes: 10,
      maxImages: 2,
    });
    expect(batches.map((b) => b.map((i) => i.tag))).toEqual([['a', 'b'], ['c'], ['huge'], ['d', 'e'], ['f']]);
    expect(batchItems([], { maxBytes: 1, maxImages: 1 })).toEqual([]);
  });
});

describe('planning', () => {
  const endpoint: ImageEndpoint = {
    description: 'test://in-memory (a stub endpoint: planning needs only listings)',
    listRepositories: async () => ['team/app', 'team/api', 'other/x'],
    repository: (name) =>
      ({
        name,
        listImages: async () => [
          { tag: 'v1', digest: `sha256:${'a'.repeat(64)}` },
          { tag: 'v1-rc' },
          { digest: `sha256:${'b'.repeat(64)}` },
        ],
      }) as never,
  };

  it('applies repository, tag and exclusion globs, and untagged only when asked', async () => {
    const items = await planImages(endpoint, { repositories: ['team/*'], excludeTags: ['*-rc'], includeUntagged: true });
    expect(items.map((i) => `${i.repository}:${i.tag ?? i.digest!.slice(0, 8)}`)).toEqual([
      'team/api:sha256:b',
      'team/api:v1',
      'team/app:sha256:b',
      'team/app:v1',
    ]);
  });

  it('refuses an unknown repository, and one outside the protected set, by name', async () => {
    await expect(planImages(endpoint, { repositories: ['team/nope'] })).rejects.toThrow(
      new UnknownRepositoryError('unknown repository team/nope in test://in-memory (a stub endpoint: planning needs only listings)'),
    );
    await expect(planImages(endpoint, { repositories: ['other/x'], within: ['team/**'] })).rejects.toThrow(
      /other\/x is not among the protected repositories \(team\/\*\*\)/,
    );
    expect((await planImages(endpoint, { within: ['team/**'] })).map((i) => i.repository)).not.toContain('other/x');
  });
});

describe('summaries', () => {
  it('counts statuses and bytes', () => {
    const r = (status: ImageResult['status'], bytesCopied: number): ImageResult => ({
      repository: 'r',
      status,
      blobsCopied: 0,
      bytesCopied,
      bytesDeduplicated: 1,
      durationMs: 0,
    });
    expect(summarize([r('copied', 10), r('failed', 0), r('unchanged', 0)])).toEqual({
      images: 3,
      copied: 1,
      unchanged: 1,
      failed: 1,
      planned: 0,
      bytesCopied: 10,
      bytesDeduplicated: 3,
    });
  });
});
