// `ecr-backup report RUN --html`: a self-contained page, rendered by headless Chromium (Debian's
// `chromium`, installed by scripts/setup.sh), and checked by the text a user sees.
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { execa } from 'execa';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { useRegistry } from './harness/services.ts';
import { cleanupFixtures } from './harness/fixture-scratch.ts';
import { pushImage } from './harness/fixtures.ts';
import { runCli, runCliJson } from './harness/cli.ts';
import { tempDir } from './harness/process.ts';
import { RunReport } from '../schema/contract.ts';
import { writeRunReport } from '../core/engine/report.ts';
import { openBackupStore } from '../core/store/url.ts';

const registry = useRegistry();
let store: string;
let backup: RunReport;

beforeAll(async () => {
  await pushImage(registry, { repository: 'team/app', tag: '1.0', variant: 'html-app', layerSizes: [300_000] });
  await pushImage(registry, { repository: 'team/lib', tag: '2.0', variant: 'html-lib' });
  store = await tempDir('html-store');
  backup = (await runCliJson<RunReport>(['backup', '--registry', registry.url, '--to', store])).json;
}, 120_000);

afterAll(async () => {
  await cleanupFixtures();
});

/** What a user sees: the page rendered by headless Chromium, tags stripped, entities decoded. */
async function renderedText(file: string): Promise<{ dom: string; text: string }> {
  const { stdout } = await execa('chromium', ['--headless', '--no-sandbox', '--disable-gpu', '--dump-dom', `file://${file}`], {
    timeout: 60_000,
  });
  const text = stdout
    .replace(/<style[\s\S]*?<\/style>/g, '')
    .replace(/<[^>]+>/g, ' ')
    .replace(/&lt;/g, '<')
    .replace(/&gt;/g, '>')
    .replace(/&quot;/g, '"')
    .replace(/&#39;/g, "'")
    .replace(/&amp;/g, '&')
    .replace(/\s+/g, ' ');
  return { dom: stdout, text };
}

describe('ecr-backup report --html', () => {
  it('renders counts, the largest images and a time line of a backup run', async () => {
    const file = join(store, 'page.html');
    const out = await runCli(['report', backup.runId, '--from', store, '--html', file]);
    expect(out.exitCode, out.stderr).toBe(0);
    expect(out.stdout).toBe(`wrote ${file}`);
    const html = await readFile(file, 'utf8');
    expect(html).not.toMatch(/<script|<link|src=|https?:\/\//); // self-contained
    const { text } = await renderedText(file);
    expect(text).toContain(`ecr-backup backup run ${backup.runId}`);
    expect(text).toContain('Result: succeeded');
    expect(text).toMatch(/images copied unchanged failed planned bytes copied already present 2 2 0 0 0/);
    expect(text).toMatch(/Largest images .* team\/app:1\.0 .* team\/lib:2\.0/);
    expect(text).toContain('Time line');
    for (const r of backup.results) expect(text).toContain(r.digest!);
  });

  it('lists failures with their reasons, escaped (a hostile error text stays text)', async () => {
    const hostile: RunReport = {
      ...backup,
      runId: 'cli-hostile-run',
      counts: { ...backup.counts, failed: 1, images: 3 },
      failures: [
        {
          repository: 'team/bad',
          tag: 'x',
          status: 'failed',
          blobsCopied: 0,
          bytesCopied: 0,
          bytesDeduplicated: 0,
          durationMs: 1200,
          error: 'team/bad:x: blob sha256:abc did not match <script>document.title="owned"</script>',
        },
      ],
    };
    hostile.results = [...backup.results, hostile.failures[0]!];
    await writeRunReport(openBackupStore(store), RunReport.parse(hostile));
    const file = join(store, 'hostile.html');
    expect((await runCli(['report', 'cli-hostile-run', '--from', store, '--html', file])).exitCode).toBe(0);
    const { dom, text } = await renderedText(file);
    expect(text).toContain('Result: 1 of 3 image(s) failed');
    expect(text).toContain('Failures (1)');
    expect(text).toContain('team/bad:x: blob sha256:abc did not match <script>document.title="owned"</script>');
    expect(dom).not.toContain('<script>');
    expect(dom).toContain('<title>ecr-backup backup run cli-hostile-run</title>');
  });

  it('refuses an unknown run with exit 2 and writes nothing', async () => {
    const out = await runCli(['report', 'no-such-run', '--from', store, '--html', join(store, 'none.html')]);
    expect(out.exitCode).toBe(2);
    expect(out.stderr).toContain('no report for run no-such-run');
    await expect(readFile(join(store, 'none.html'))).rejects.toThrow();
  });
});
