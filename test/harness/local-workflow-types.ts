// The local workflow's public shapes: what createLocalWorkflow takes (options, run options) and
// gives back (the workflow, one execution's result with its workers, Lambda calls and notifications).
import type { StateMachineDefinition } from 'aws-local-stepfunctions';
import type { Component, RecordedCall } from './aws-calls.ts';
import type { EcrBackupContext } from '../../infra/context.ts';
import type { CfnTemplate } from './synthesized-workflow.ts';

export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };
export type JsonObject = { [key: string]: Json };
export type States = Record<string, JsonObject>;
export type EventLog = {
  type: string;
  state?: { name: string; type: string; input?: Json; output?: Json };
  Error?: string;
  Cause?: unknown;
  index?: number;
};

export interface LocalWorkflowOptions {
  /** The `ecrBackup` context value the stack is synthesized with (the deployment's configuration). */
  config: EcrBackupContext;
  /** Stands in for the AWS account: moto's endpoint and dummy credentials (TestMoto.env). */
  awsEnv: Record<string, string>;
  /** Changes the deployed ASL before the local rewrite (e.g. to show what a definition without a ResultWriter does). */
  transformAsl?: (asl: { StartAt: string; States: States }) => void;
}

export interface RunOptions {
  /** The store bucket (exists in moto); replaces the stack's bucket everywhere (STORE_URL). */
  bucket: string;
  /** Execution name (= run id); default: a fresh unique name. */
  name?: string;
  /** Added to the in-process Lambdas' environment (e.g. ECR_BACKUP_ECR_REGISTRY_URL). */
  lambdaEnv?: Record<string, string>;
  /** Added to every worker's environment, or per mode. */
  workerEnv?: Record<string, string> | ((mode: 'backup' | 'restore') => Record<string, string>);
  /** Lambda timeout for every function (default: each function's Timeout from the template). */
  lambdaTimeoutMs?: number;
  /**
   * Scripted Fargate tasks instead of the worker process (tests of the workflow's own limits, named
   * so): the stopped task's exit code and, for a failure, the DescribeTasks task object as its cause.
   */
  scriptedTask?: (launch: { mode: 'backup' | 'restore'; batchKey: string }) => { exitCode: number; task?: JsonObject };
}

export interface WorkerRun {
  mode: 'backup' | 'restore';
  batchKey: string;
  exitCode: number | null;
  signal: string | null;
  durationMs: number;
  /** The worker's stdout and stderr (its JSON log lines), interleaved. */
  output: string;
}

export interface LambdaInvocation {
  state: string;
  functionName: string;
  event: unknown;
  result?: unknown;
  error?: { errorType: string; errorMessage: string };
}

export interface LocalExecution {
  name: string;
  executionArn: string;
  status: 'SUCCEEDED' | 'FAILED';
  /** The execution's output (SUCCEEDED). */
  output?: unknown;
  /** Error and Cause of a FAILED execution, as DescribeExecution would give them. */
  error?: string;
  cause?: string;
  /** For a failure raised by a Lambda: the `errorMessage` inside the Cause JSON. */
  causeMessage?: string;
  /** Every event the interpreter logged, Map iterations included. */
  events: EventLog[];
  /** Names of the states entered, in order (Map iterations included). */
  statesEntered: string[];
  workers: WorkerRun[];
  lambdas: LambdaInvocation[];
  /** Messages the state machine itself published (sns:publish states). */
  notifications: Array<{ state: string; topicArn: string; subject?: string; message: string }>;
  durationMs: number;
}

export interface LocalWorkflow {
  template: CfnTemplate;
  /** The deployed ASL (fake ARNs), before the local rewrite. */
  asl: StateMachineDefinition;
  /** What actually runs: distributed maps rewritten to ItemReader task + INLINE map. */
  localAsl: StateMachineDefinition;
  stateMachineArn: string;
  run(input: unknown, options: RunOptions): Promise<LocalExecution>;
  /** The Lambda environment a run would use (STORE_URL etc.), by function name. */
  lambdaEnvironment(functionName: string, bucket: string): Record<string, string>;
  /** Every AWS call of every run so far, by the component (role) that made it. */
  calls: RecordedCall[];
  /** The stores' buckets of the runs so far (they stand for the template's store bucket). */
  runBuckets: Set<string>;
  /** Each component's role, as a logical id in `template`. */
  roleOf: Partial<Record<Component, string>>;
}
