// Usage errors a newcomer meets first: each exits 2 with one line that says what to fix. No services:
// these fail before any registry or store is contacted.
import { afterAll, describe, expect, it } from 'vitest';
import { join } from 'node:path';
import { tempDir } from './harness/process.ts';
import { runCli } from './harness/cli.ts';
import { serve } from './harness/scripted-server.ts';
import { closeAll } from './harness/registry-client.ts';

afterAll(closeAll);

describe('CLI usage errors', () => {
  it.each([['list'], ['verify'], ['stats'], ['report']])(
    '%s --from a directory that does not exist exits 2 instead of printing an empty store',
    async (command) => {
      const missing = join(await tempDir('usage'), 'no-such-store');
      const result = await runCli([command, '--from', missing]);
      expect(result.exitCode).toBe(2);
      expect(result.stderr).toContain(`no backup store at ${missing}: the directory does not exist`);
    },
  );

  it('a backup from ECR with no region configured exits 2 and names AWS_REGION', async () => {
    const home = await tempDir('usage-home');
    const result = await runCli(['backup', '--to', join(home, 'store')], {
      env: {
        AWS_REGION: undefined,
        AWS_DEFAULT_REGION: undefined,
        AWS_PROFILE: undefined,
        HOME: home,
        AWS_CONFIG_FILE: join(home, 'none'),
        AWS_ACCESS_KEY_ID: 'x',
        AWS_SECRET_ACCESS_KEY: 'x',
      },
    });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toContain('no AWS region configured: set AWS_REGION');
  });

  // S3 answers 403 at once (scripted): a closed port would be retried with backoff for ~12 s first.
  it('prints no multi-line AWS SDK node-version warning (an S3 store refusing access, scripted)', async () => {
    const s3 = await serve((_req, res) => {
      res.writeHead(403, { 'content-type': 'application/xml' });
      res.end('<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>Access Denied</Message></Error>');
    });
    const result = await runCli(['list', '--from', 's3://nowhere/store'], {
      env: {
        NODE_NO_WARNINGS: undefined,
        AWS_ENDPOINT_URL_S3: s3.url,
        AWS_REGION: 'us-east-1',
        AWS_ACCESS_KEY_ID: 'x',
        AWS_SECRET_ACCESS_KEY: 'x',
      },
    });
    expect(result.exitCode).toBe(1);
    expect(result.stderr).not.toContain('NodeVersionSupportWarning');
    expect(result.stderr.trim().split('\n')).toHaveLength(1);
  });
});
