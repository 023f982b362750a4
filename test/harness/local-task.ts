// Fargate tasks of the local workflow: the real worker (worker/main.ts) as a child process with the
// command and environment the task definition and overrides give it (or a scripted task), its AWS calls
// recorded, and the stopped task as DescribeTasks would show it.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';
import type { RecordedCall } from './aws-calls.ts';
import { StateError } from './distributed-map.ts';
import type { Json, JsonObject, RunOptions, WorkerRun } from './local-workflow-types.ts';
import { workerLaunchForRunTask, type CfnTemplate } from './synthesized-workflow.ts';
import { REPO_ROOT } from '../../infra/assets.ts';
import { ENV } from '../../schema/environment.ts';

// Workers still running when this process exits (a test timed out) are killed with it.
const liveWorkers = new Set<ReturnType<typeof spawn>>();
process.once('exit', () => {
  for (const child of liveWorkers) child.kill('SIGKILL');
});

const PRELOAD = path.join(path.dirname(new URL(import.meta.url).pathname), 'record-aws-calls-preload.ts');

interface TaskLauncher {
  template: CfnTemplate;
  awsEnv: Record<string, string>;
  runOptions: RunOptions;
  /** Template bucket ids -> the run's bucket. */
  bucketOverrides: (bucket: string) => Record<string, string>;
  /** This execution's workers (appended to) and its running processes. */
  workers: WorkerRun[];
  children: Set<ReturnType<typeof spawn>>;
  /** Every AWS call so far (the worker's are appended). */
  calls: RecordedCall[];
}

/** The `ecs:runTask.sync` task handler of a state. */
export function taskLauncher({ template, awsEnv, runOptions, bucketOverrides, workers, children, calls }: TaskLauncher) {
  return (stateName: string) =>
    async (parameters: Json): Promise<Json> => {
      const params = parameters as Parameters<typeof workerLaunchForRunTask>[1] & { LaunchType?: string; Cluster?: string };
      if (params.LaunchType !== 'FARGATE' || !params.Cluster) throw new Error(`${stateName}: expected a FARGATE RunTask with a Cluster`);
      // First which task definition (backup or restore) the parameters pick, for per-mode test env.
      const probe = workerLaunchForRunTask(template, params, { overrides: bucketOverrides(runOptions.bucket) });
      const extra = typeof runOptions.workerEnv === 'function' ? runOptions.workerEnv(probe.mode) : (runOptions.workerEnv ?? {});
      const launch = workerLaunchForRunTask(template, params, {
        overrides: bucketOverrides(runOptions.bucket),
        env: { ...awsEnv, ...extra },
      });
      const startedAt = Date.now();
      if (runOptions.scriptedTask) {
        const scripted = runOptions.scriptedTask({ mode: launch.mode, batchKey: launch.env[ENV.BATCH_KEY]! });
        workers.push({
          mode: launch.mode,
          batchKey: launch.env[ENV.BATCH_KEY]!,
          exitCode: scripted.exitCode,
          signal: null,
          durationMs: 0,
          output: '(scripted)',
        });
        if (scripted.exitCode !== 0)
          throw new StateError('States.TaskFailed', JSON.stringify(scripted.task ?? { ExitCode: scripted.exitCode }));
        return scripted.task ?? {};
      }
      const [command, ...args] = launch.localCommand as [string, ...string[]];
      // Only what the container would have (task definition + overrides) plus the AWS stand-ins;
      // PATH/HOME so node, tsx and registry tools resolve; the call recorder (harness/aws-calls.ts).
      const callLog = path.join(os.tmpdir(), `ecr-backup-aws-calls-${randomBytes(6).toString('hex')}.jsonl`);
      const env = {
        PATH: process.env.PATH ?? '',
        HOME: process.env.HOME ?? '/tmp',
        ...launch.env,
        ECR_BACKUP_TEST_AWS_CALLS: callLog,
        ECR_BACKUP_TEST_COMPONENT: launch.mode,
      };
      const child = spawn(command, [...args.slice(0, 2), '--import', PRELOAD, ...args.slice(2)], {
        cwd: REPO_ROOT,
        env,
        stdio: ['ignore', 'pipe', 'pipe'],
      });
      children.add(child);
      liveWorkers.add(child);
      let output = '';
      const collect = (chunk: Buffer) => {
        output += chunk.toString('utf8');
        if (output.length > 200_000) output = output.slice(-100_000);
      };
      child.stdout.on('data', collect);
      child.stderr.on('data', collect);
      const { code, signal } = await new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve, reject) => {
        child.once('error', reject);
        child.once('close', (c, s) => resolve({ code: c, signal: s }));
      });
      children.delete(child);
      liveWorkers.delete(child);
      if (fs.existsSync(callLog)) {
        for (const line of fs.readFileSync(callLog, 'utf8').split('\n')) if (line) calls.push(JSON.parse(line) as RecordedCall);
        fs.rmSync(callLog, { force: true });
      }
      const worker: WorkerRun = {
        mode: launch.mode,
        batchKey: launch.env[ENV.BATCH_KEY]!,
        exitCode: code,
        signal,
        durationMs: Date.now() - startedAt,
        output,
      };
      workers.push(worker);
      // A DescribeTasks-shaped result of the stopped task.
      const task: JsonObject = {
        ClusterArn: params.Cluster,
        TaskDefinitionArn: launch.taskDefinitionArn,
        LaunchType: 'FARGATE',
        LastStatus: 'STOPPED',
        StopCode: 'EssentialContainerExited',
        StoppedReason: 'Essential container in task exited',
        Containers: [{ Name: launch.containerName, LastStatus: 'STOPPED', ExitCode: code ?? 137 }],
      };
      if (code !== 0) throw new StateError('States.TaskFailed', JSON.stringify(task));
      return task;
    };
}
