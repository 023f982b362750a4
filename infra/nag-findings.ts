// The cdk-nag AwsSolutions findings the workflow's core resources accept, each with its reason.
// (Optional features acknowledge their own findings in their constructs.)
import type * as iam from 'aws-cdk-lib/aws-iam';
import type * as lambda from 'aws-cdk-lib/aws-lambda';
import type * as sfn from 'aws-cdk-lib/aws-stepfunctions';
import type { Construct } from 'constructs';
import { acknowledge, acknowledgeIam5 } from './nag.ts';

export interface AcknowledgedResources {
  roles: {
    list: iam.IRole;
    summarize: iam.IRole;
    backup: iam.IRole;
    restore: iam.IRole;
    backupExecution: iam.IRole;
    restoreExecution: iam.IRole;
  };
  stateMachine: sfn.StateMachine;
  /** Every Lambda function of the stack. */
  functions: lambda.IFunction[];
}

export function acknowledgeWorkflowFindings(scope: Construct, { roles, stateMachine, functions }: AcknowledgedResources): void {
  acknowledgeIam5(scope, [
    {
      pattern: /^Resource::\*$/,
      where: [roles.backup, roles.restore],
      reason: 'ecr:GetAuthorizationToken has no resource type; AWS requires "*" for it.',
    },
    {
      pattern: /^Resource::arn:<AWS::Partition>:ecr:(<AWS::Region>|\*):<AWS::AccountId>:repository\/.*\*.*$/,
      where: [roles.list, roles.backup, roles.restore],
      reason:
        "Repository ARNs come from the configured repository globs (DescribeRepositories lists this account's repositories to match them); restore targets may be created at run time under a prefix.",
    },
    {
      pattern: /^Resource::<[^>]+\.Arn>\/[^*]*(blobs|catalog|runs)\/(_deleted\/)?\*.*$/,
      where: [roles.list, roles.summarize, roles.backup, roles.restore, stateMachine.role],
      reason:
        "Object permissions are limited to the store prefix's blobs/, catalog/ or runs/ areas (or files in them, or catalog/_deleted/ for the listing's deleted-repository markers), whose keys are digests, repository names and run ids known only at run time.",
    },
    {
      pattern: /^Resource::\*$/,
      where: [roles.backupExecution, roles.restoreExecution],
      reason: 'Standard ECS task execution role created by CDK: ecr:GetAuthorizationToken (to pull the worker image) has no resource type.',
    },
    {
      pattern: /^Resource::\*$/,
      where: [stateMachine.role],
      reason:
        'Granted by CDK for features whose APIs take no resource: X-Ray tracing and CloudWatch Logs delivery; plus ecs:DescribeTasks/StopTask for the .sync ECS integration, whose task ARNs exist only at run time.',
    },
    {
      pattern: /^Resource::<[^>]+\.Arn>\/[^*]*runs\/map-results\/\*$/,
      where: [stateMachine.role],
      reason: "The distributed Map's ResultWriter writes under runs/map-results/<map run id>/, an id Step Functions generates at run time.",
    },
    {
      pattern: /^Resource::<[^>]+\.Arn>:\*$/,
      where: [stateMachine.role],
      reason: 'lambda:InvokeFunction on the two workflow functions and their versions/aliases (CDK LambdaInvoke grant).',
    },
    {
      pattern: /^Resource::arn:<AWS::Partition>:states:<AWS::Region>:<AWS::AccountId>:execution:.*:\*$/,
      where: [stateMachine.node.findChild('DistributedMapPolicy')],
      reason:
        'The distributed Map runs, describes, stops and redrives child executions of this state machine only; their names are generated at run time.',
    },
  ]);
  for (const fn of functions) {
    acknowledge(
      fn,
      'AwsSolutions-L1',
      'Node.js 22 is deliberate: it matches the worker image (node:22) and the bundle target, and is supported by Lambda; move to 24 together with the worker image.',
    );
  }
}
