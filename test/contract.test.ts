// The contract at the edge: what the CLI, the listing Lambda and the worker accept and refuse.
import { describe, expect, it } from 'vitest';
import { InvalidInputError, parseExecutionInput, summarize, type ImageResult } from '../schema/contract.ts';
import { loadWorkerEnvironment, ConfigurationError } from '../schema/environment.ts';
import { globToRegExp, matchesFilters } from '../schema/glob.ts';
import { batchItems } from '../state-machine/batching.ts';
import { planImages, UnknownRepositoryError } from '../worker/engine/plan.ts';
import type { ImageEndpoint } from '../worker/model/endpoint.ts';

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
    const input = { mode: 'restore', repositories: ['team/**'], asOf: '2026-11-01T00:00:00+01:00', target: { region: 'eu-west-1', accountId: '123456789012', repositoryPrefix: 'dr/' } };
    expect(parseExecutionInput(input)).toEqual(input);
  });
});

describe('worker environment', () => {
  it('names every bad variable in one error', () => {
    expect(() => loadWorkerEnvironment({ STORE_URL: 'ftp://x', BATCH_KEY: '../../etc/passwd' })).toThrow(ConfigurationError);
    expect(() => loadWorkerEnvironment({ STORE_URL: 'ftp://x', BATCH_KEY: '../../etc/passwd' })).toThrow(/STORE_URL: .*; BATCH_KEY: must be runs/);
  });
});

describe('globs', () => {
  it('* stays within a segment, ** crosses segments, regex characters are literal', () => {
    expect(globToRegExp('team/*').test('team/app')).toBe(true);
    expect(globToRegExp('team/*').test('team/app/sub')).toBe(false);
    expect(globToRegExp('team/**').test('team/app/sub')).toBe(true);
    expect(globToRegExp('v1.?').test('v1.2')).toBe(true);
    expect(globToRegExp('v1.?').test('v1x2')).toBe(false);
    expect(matchesFilters('v1.0-rc', ['v1.*'], ['*-rc'])).toBe(false);
    expect(matchesFilters('anything')).toBe(true);
  });
});

describe('batching', () => {
  it('closes a batch at the byte or the image limit and gives an oversized image its own batch', () => {
    const item = (tag: string, sizeBytes: number) => ({ repository: 'r', tag, sizeBytes });
    const batches = batchItems([item('a', 4), item('b', 4), item('c', 4), item('huge', 50), item('d', 1), item('e', 1), item('f', 1)], { maxBytes: 10, maxImages: 2 });
    expect(batches.map((b) => b.map((i) => i.tag))).toEqual([['a', 'b'], ['c'], ['huge'], ['d', 'e'], ['f']]);
    expect(batchItems([], { maxBytes: 1, maxImages: 1 })).toEqual([]);
  });
});

describe('planning', () => {
  const endpoint: ImageEndpoint = {
    description: 'test://in-memory (a stub endpoint: planning needs only listings)',
    listRepositories: async () => ['team/app', 'team/api', 'other/x'],
    repository: (name) => ({ name, listImages: async () => [{ tag: 'v1', digest: 'sha256:' + 'a'.repeat(64) }, { tag: 'v1-rc' }, { digest: 'sha256:' + 'b'.repeat(64) }] }) as never,
  };

  it('applies repository, tag and exclusion globs, and untagged only when asked', async () => {
    const items = await planImages(endpoint, { repositories: ['team/*'], excludeTags: ['*-rc'], includeUntagged: true });
    expect(items.map((i) => `${i.repository}:${i.tag ?? i.digest!.slice(0, 8)}`)).toEqual(['team/api:sha256:b', 'team/api:v1', 'team/app:sha256:b', 'team/app:v1']);
  });

  it('refuses an unknown repository, and one outside the protected set, by name', async () => {
    await expect(planImages(endpoint, { repositories: ['team/nope'] })).rejects.toThrow(new UnknownRepositoryError('unknown repository team/nope in test://in-memory (a stub endpoint: planning needs only listings)'));
    await expect(planImages(endpoint, { repositories: ['other/x'], within: ['team/**'] })).rejects.toThrow(/other\/x is not among the protected repositories \(team\/\*\*\)/);
    expect((await planImages(endpoint, { within: ['team/**'] })).map((i) => i.repository)).not.toContain('other/x');
  });
});

describe('summaries', () => {
  it('counts statuses and bytes', () => {
    const r = (status: ImageResult['status'], bytesCopied: number): ImageResult => ({ repository: 'r', status, blobsCopied: 0, bytesCopied, bytesDeduplicated: 1, durationMs: 0 });
    expect(summarize([r('copied', 10), r('failed', 0), r('unchanged', 0)])).toEqual({ images: 3, copied: 1, unchanged: 1, failed: 1, planned: 0, bytesCopied: 10, bytesDeduplicated: 3 });
  });
});
