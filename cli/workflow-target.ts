// The deployed state machine the workflow commands address (their target options), and Step Functions
// calls whose argument errors exit 2.
//
// Which state machine: `--state-machine-arn`, or `--stack NAME`, resolved with Step Functions alone
// (@aws-sdk/client-cloudformation is not a dependency): the state machine carrying the tag the
// EcrBackup construct puts on it, `ecr-backup:stack-name = NAME` (CloudFormation's own automatic
// tags are not promised for every resource type); when several match, the one whose definition has
// this workflow's states.
import { type Command, Option } from 'commander';
import { DescribeStateMachineCommand, ListStateMachinesCommand, ListTagsForResourceCommand, SFNClient } from '@aws-sdk/client-sfn';
import { STACK_NAME_TAG } from '../schema/contract.ts';
import { STATE } from '../schema/workflow-states.ts';
import { mapLimited } from '../core/limiter.ts';
import { UsageError } from './endpoints.ts';

const STATE_MACHINE_ARN = /^arn:aws[a-z-]*:states:([a-z0-9-]+):(\d{12}):stateMachine:[^:\s]+(:[^:\s]+)?$/;

export interface TargetOptions {
  stack?: string;
  stateMachineArn?: string;
  store?: string;
  json?: boolean;
}

export function addTargetOptions(command: Command): Command {
  return command
    .addOption(new Option('--stack <name>', 'the CloudFormation stack that deployed ecr-backup').conflicts('stateMachineArn'))
    .option('--state-machine-arn <arn>', 'the ecr-backup state machine (instead of --stack)')
    .option('--store <url>', 's3://bucket/prefix of the backup store, for run reports (default: taken from the execution)')
    .option('--json', 'print JSON on stdout');
}

interface ResolvedStateMachine {
  arn: string;
  client: SFNClient;
  region?: string;
}

/** --state-machine-arn as given, or the state machine of --stack (see the file comment). */
export async function resolveStateMachine(options: TargetOptions): Promise<ResolvedStateMachine> {
  if (options.stateMachineArn !== undefined) {
    const m = STATE_MACHINE_ARN.exec(options.stateMachineArn);
    if (!m)
      throw new UsageError(
        `--state-machine-arn: not a state machine ARN (arn:aws:states:<region>:<account>:stateMachine:<name>): ${JSON.stringify(options.stateMachineArn)}`,
      );
    return { arn: options.stateMachineArn, client: new SFNClient({ region: m[1]! }), region: m[1]! };
  }
  if (options.stack === undefined || options.stack === '') throw new UsageError('give --stack NAME or --state-machine-arn ARN');
  const client = new SFNClient({});
  const arns: string[] = [];
  let nextToken: string | undefined;
  do {
    const page = await sfnCall(() => client.send(new ListStateMachinesCommand({ maxResults: 1000, nextToken })));
    arns.push(...(page.stateMachines ?? []).map((s) => s.stateMachineArn!));
    nextToken = page.nextToken;
  } while (nextToken);
  const tagged = (
    await mapLimited(arns, 4, async (arn) => {
      const tags = (await sfnCall(() => client.send(new ListTagsForResourceCommand({ resourceArn: arn })))).tags ?? [];
      return tags.some((t) => t.key === STACK_NAME_TAG && t.value === options.stack) ? arn : undefined;
    })
  ).filter((arn): arn is string => arn !== undefined);
  let matches = tagged;
  if (tagged.length > 1) {
    matches = (
      await mapLimited(tagged, 4, async (arn) => {
        const { definition } = await sfnCall(() => client.send(new DescribeStateMachineCommand({ stateMachineArn: arn })));
        return isWorkflowDefinition(definition) ? arn : undefined;
      })
    ).filter((arn): arn is string => arn !== undefined);
  }
  if (matches.length !== 1) {
    const found =
      matches.length === 0
        ? `none of the ${arns.length} state machine(s) in this region carries the tag ${STACK_NAME_TAG}=${options.stack}`
        : `several match: ${matches.join(', ')}`;
    throw new UsageError(`--stack ${options.stack}: ${found}; pass --state-machine-arn instead`);
  }
  const region = STATE_MACHINE_ARN.exec(matches[0]!)?.[1];
  return { arn: matches[0]!, client, ...(region ? { region } : {}) };
}

function isWorkflowDefinition(definition: string | undefined): boolean {
  try {
    const states = (JSON.parse(definition ?? '{}') as { States?: Record<string, unknown> }).States ?? {};
    return STATE.list in states && STATE.map in states;
  } catch {
    return false;
  }
}

/** Step Functions errors that mean "wrong argument" exit 2; the rest (credentials, network) exit 1. */
export async function sfnCall<T>(call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    const name = (error as { name?: string }).name;
    if (
      name &&
      [
        'StateMachineDoesNotExist',
        'InvalidArn',
        'ExecutionAlreadyExists',
        'InvalidName',
        'ExecutionDoesNotExist',
        'InvalidExecutionInput',
      ].includes(name)
    ) {
      throw new UsageError(`${name}: ${(error as Error).message}`);
    }
    throw error;
  }
}
