// A tag moved to another digest at the source between two backups: the second run reports the move
// with both digests (CLI --json and text, report.md, HTML, the SNS notification text), and
// `restore --as-of` a time between the runs still restores the old digest. Real registries, real
// CLI, a directory store.
import { afterAll, describe, expect, it } from 'vitest';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { registryService, useServices } from './harness/services.ts';
import { tempDir } from './harness/process.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { inspectRaw } from './harness/fixture-tools.ts';
import { pushImage } from './harness/fixtures.ts';
import { WorkItem, type RunReport } from '../schema/contract.ts';
import { renderReportHtml } from '../core/engine/report-html.ts';
import { notificationText } from '../lambdas/summarize.ts';

const { source, target } = useServices({ source: registryService(), target: registryService() });

afterAll(async () => {
  await cleanupFixtures();
});

describe('tags moved at the source', () => {
  it('a backup after team/app:prod moved reports the move with both digests, and restore --as-of brings back the old one', async () => {
    const store = await tempDir('moved-store');
    const backup = ['backup', '--registry', source.url, '--to', store, '--repositories', 'team/*'];
    const before = await pushImage(source, { repository: 'team/app', tag: 'prod', variant: 'moved-before' });
    await pushImage(source, { repository: 'team/app', tag: 'stable', variant: 'moved-stable' });
    const first = await runCliJson<RunReport>([...backup, '--json']);
    expect(first.exitCode, first.stderr).toBe(0);
    expect(first.json.counts.copied).toBe(2);
    expect(first.json.results.every((r) => r.previousDigest === undefined)).toBe(true);

    await new Promise((r) => setTimeout(r, 20));
    const between = new Date().toISOString();
    await new Promise((r) => setTimeout(r, 20));
    const after = await pushImage(source, { repository: 'team/app', tag: 'prod', variant: 'moved-after' });
    expect(after.digest).not.toBe(before.digest);

    const second = await runCliJson<RunReport>([...backup, '--json']);
    expect(second.exitCode, second.stderr).toBe(0);
    expect(second.json.counts).toMatchObject({ copied: 1, unchanged: 1 });
    const prod = second.json.results.find((r) => r.tag === 'prod')!;
    expect(prod).toMatchObject({ status: 'copied', digest: after.digest, previousDigest: before.digest });
    // Workflow batches carry the previous digest to the Fargate workers (the batch schema is strict).
    expect(WorkItem.parse({ repository: 'team/app', tag: 'prod', previousDigest: before.digest }).previousDigest).toBe(before.digest);
    // The unchanged tag did not move and is not reported as moved.
    expect(second.json.results.find((r) => r.tag === 'stable')!.previousDigest).toBeUndefined();

    const line = `tag team/app:prod moved from ${before.digest} to ${after.digest}`;
    const markdown = await readFile(join(store, 'runs', second.json.runId, 'report.md'), 'utf8');
    expect(markdown).toContain('## Moved tags');
    const movedSection = markdown.split('## Moved tags')[1]!.split('\n## ')[0]!;
    expect(movedSection.trim().split('\n').slice(2)).toEqual([`| team/app | prod | \`${before.digest}\` | \`${after.digest}\` |`]);

    const html = renderReportHtml(second.json);
    expect(html).toContain('Moved tags (1)');
    expect(html).toContain(`<code>${before.digest}</code></td><td><code>${after.digest}</code>`);

    const notice = notificationText(second.json, `${store}/runs/${second.json.runId}/report.json`)!;
    expect(notice.Subject).toContain('1 tag(s) moved');
    expect(notice.Message).toContain(`- ${line}`);
    // A run with nothing failed, moved or deleted sends no notification.
    expect(notificationText(first.json, 'x')).toBeUndefined();

    // Moved once more (back to the first image): the CLI's text summary names the move.
    const again = await pushImage(source, { repository: 'team/app', tag: 'prod', variant: 'moved-before' });
    expect(again.digest).toBe(before.digest);
    const text = await runCli(backup);
    expect(text.exitCode, text.stderr).toBe(0);
    expect(text.stdout).toContain(`tag team/app:prod moved from ${after.digest} to ${before.digest}`);

    const old = await runCli(['restore', '--from', store, '--registry', target.url, '--as-of', between, '--repository-prefix', 'old/']);
    expect(old.exitCode, old.stderr).toBe(0);
    expect((await inspectRaw(`${target.host}/old/team/app:prod`)).digest).toBe(before.digest);
    const middle = await runCli([
      'restore',
      '--from',
      store,
      '--registry',
      target.url,
      '--as-of',
      second.json.finishedAt,
      '--repository-prefix',
      'mid/',
    ]);
    expect(middle.exitCode, middle.stderr).toBe(0);
    expect((await inspectRaw(`${target.host}/mid/team/app:prod`)).digest).toBe(after.digest);
  });

  it('the summary notification lists failures, moved tags and deleted tags, and says nothing for a quiet run', () => {
    const base: RunReport = {
      runId: 'r1',
      mode: 'backup',
      startedAt: 'a',
      finishedAt: 'b',
      counts: { images: 2, copied: 1, unchanged: 0, failed: 1, planned: 0, bytesCopied: 0, bytesDeduplicated: 0 },
      failures: [],
      results: [],
    };
    const moved = {
      repository: 'team/app',
      tag: 'prod',
      digest: `sha256:${'b'.repeat(64)}`,
      previousDigest: `sha256:${'a'.repeat(64)}`,
      status: 'copied' as const,
      blobsCopied: 1,
      bytesCopied: 1,
      bytesDeduplicated: 0,
      durationMs: 1,
    };
    const failed = {
      repository: 'team/db',
      tag: '1',
      status: 'failed' as const,
      blobsCopied: 0,
      bytesCopied: 0,
      bytesDeduplicated: 0,
      durationMs: 1,
      error: 'team/db:1: manifest unknown',
    };
    const notice = notificationText(
      {
        ...base,
        results: [moved, failed],
        failures: [failed],
        deletedAtSource: [{ repository: 'team/app', tag: 'old', lastDigest: `sha256:${'c'.repeat(64)}`, deletedAt: 'now' }],
      },
      'store/runs/r1/report.json',
    )!;
    expect(notice.Subject).toBe('ecr-backup backup r1: 1 of 2 image(s) failed');
    expect(notice.Message.split('\n')).toEqual([
      '1 of 2 image(s) failed in backup run r1.',
      'Report: store/runs/r1/report.json',
      '',
      '- team/db:1: manifest unknown',
      '',
      'Moved tags:',
      `- tag team/app:prod moved from sha256:${'a'.repeat(64)} to sha256:${'b'.repeat(64)}`,
      '',
      'Deleted at source:',
      `- tag team/app:old deleted at source (was sha256:${'c'.repeat(64)})`,
    ]);
    // A restore result with a previous digest is never a move; a quiet run sends nothing.
    expect(notificationText({ ...base, mode: 'restore', counts: { ...base.counts, failed: 0 }, results: [moved] }, 'x')).toBeUndefined();
  });
});
