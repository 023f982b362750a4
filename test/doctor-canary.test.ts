// `ecr-backup doctor --canary`: backs up and restores a scratch repository through the workflow and
// compares digests (scripted Step Functions client: moto cannot run the workflow's tasks).
import { beforeEach, describe, expect, it } from 'vitest';
import { createHash } from 'node:crypto';
import { CreateRepositoryCommand, ECRClient, PutImageCommand } from '@aws-sdk/client-ecr';
import { type DescribeExecutionCommand, StartExecutionCommand, type SFNClient } from '@aws-sdk/client-sfn';
import { runDoctor } from '../cli/doctor.ts';
import { CANARY_REPOSITORY, CANARY_RESTORE_PREFIX } from '../cli/doctor-canary.ts';
import { clients, config, deploy, options, STATE_MACHINE, useDoctorMoto } from './harness/doctor-stack.ts';

useDoctorMoto();
describe('doctor --canary', () => {
  const manifest = (n: number) => {
    const text = JSON.stringify({
      schemaVersion: 2,
      mediaType: 'application/vnd.oci.image.manifest.v1+json',
      config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: `sha256:${String(n).repeat(64).slice(0, 64)}`, size: 2 },
      layers: [],
    });
    return { text, digest: `sha256:${createHash('sha256').update(text).digest('hex')}` };
  };
  async function image(repositoryName: string, tag: string, n: number) {
    const ecr = new ECRClient(config);
    await ecr.send(new CreateRepositoryCommand({ repositoryName })).catch(() => undefined);
    const m = manifest(n);
    await ecr.send(
      new PutImageCommand({
        repositoryName,
        imageTag: tag,
        imageManifest: m.text,
        imageManifestMediaType: 'application/vnd.oci.image.manifest.v1+json',
        imageDigest: m.digest,
      }),
    );
  }
  /** Step Functions, scripted: moto cannot run the workflow's Lambda and ECS tasks. Records the inputs. */
  function scriptedSfn(status: string, started: unknown[]): SFNClient {
    return {
      send: async (command: StartExecutionCommand | DescribeExecutionCommand) => {
        if (command instanceof StartExecutionCommand) {
          expect(command.input.stateMachineArn).toBe(STATE_MACHINE);
          started.push(JSON.parse(command.input.input!));
          return { executionArn: `${STATE_MACHINE.replace(':stateMachine:', ':execution:')}:${command.input.name}` };
        }
        return { status, ...(status === 'FAILED' ? { error: 'States.TaskFailed' } : {}) };
      },
    } as unknown as SFNClient;
  }

  beforeEach(() => deploy());

  it('backs up and restores the scratch repository through the workflow and compares digests (scripted Step Functions client)', async () => {
    await image(CANARY_REPOSITORY, 'canary', 1);
    await image(`${CANARY_RESTORE_PREFIX}${CANARY_REPOSITORY}`, 'canary', 1);
    const started: unknown[] = [];
    const result = await runDoctor(options({ canary: true }), clients({ sfn: scriptedSfn('SUCCEEDED', started) }));
    expect(started).toEqual([
      { mode: 'backup', repositories: [CANARY_REPOSITORY] },
      { mode: 'restore', repositories: [CANARY_REPOSITORY], target: { repositoryPrefix: CANARY_RESTORE_PREFIX } },
    ]);
    expect(result.checks.at(-1)).toMatchObject({
      status: 'ok',
      detail: expect.stringMatching(/1 tag\(s\) backed up and restored.*digests equal/),
    });
    expect(result.ok).toBe(true);
  });

  it('fails when the restored digest differs, when an execution fails, and when the scratch repository is missing (scripted Step Functions client)', async () => {
    const differs = async () => {
      await image(CANARY_REPOSITORY, 'canary', 1);
      await image(`${CANARY_RESTORE_PREFIX}${CANARY_REPOSITORY}`, 'canary', 2);
      return runDoctor(options({ canary: true }), clients({ sfn: scriptedSfn('SUCCEEDED', []) }));
    };
    expect((await differs()).checks.at(-1)).toMatchObject({
      status: 'FAIL',
      detail: expect.stringMatching(/restored digests differ: canary: sha256:/),
    });

    const started: unknown[] = [];
    const failedRun = await runDoctor(options({ canary: true }), clients({ sfn: scriptedSfn('FAILED', started) }));
    expect(failedRun.checks.at(-1)).toMatchObject({
      status: 'FAIL',
      detail: expect.stringMatching(/^backup execution FAILED: States.TaskFailed/),
    });
    expect(started).toHaveLength(1);

    const missing = await runDoctor(
      options({ canary: true, canaryRepository: 'no-such-repo' }),
      clients({ sfn: scriptedSfn('SUCCEEDED', []) }),
    );
    expect(missing.checks.at(-1)).toMatchObject({
      status: 'FAIL',
      detail: 'repository no-such-repo does not exist',
      fix: expect.stringMatching(/skopeo copy/),
    });
    expect(missing.ok).toBe(false);
  });
});
