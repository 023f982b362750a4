// `ecr-backup doctor` run as a command: usage errors and a missing stack, as a checklist and as JSON.
import { describe, expect, it } from 'vitest';
import { runCli } from './harness/cli.ts';
import { moto, useDoctorMoto } from './harness/doctor-stack.ts';

useDoctorMoto();
describe('doctor as a command', () => {
  it('exits 2 without --stack', async () => {
    const result = await runCli(['doctor'], { env: moto.env });
    expect(result.exitCode).toBe(2);
    expect(result.stderr).toMatch(/give --stack NAME/);
  });

  it('exits 1 with a fix when the stack does not exist, as a checklist and as JSON', async () => {
    await moto.reset();
    const text = await runCli(['doctor', '--stack', 'NoSuchStack'], { env: moto.env });
    expect(text.exitCode).toBe(1);
    expect(text.stdout).toMatch(/^FAIL {2}stack NoSuchStack: no such stack.*\n {6}fix: check --stack/m);
    const json = await runCli(['doctor', '--stack', 'NoSuchStack', '--json'], { env: moto.env });
    expect(json.exitCode).toBe(1);
    expect(JSON.parse(json.stdout)).toMatchObject({
      stack: 'NoSuchStack',
      ok: false,
      checks: [{ status: 'FAIL', name: 'stack NoSuchStack' }],
    });
  });
});
